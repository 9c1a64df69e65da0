import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAfterEach, closedPort, startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/gateway.js';
import { send } from './helpers/http.js';
import { startIdentityGateway } from './helpers/identity.js';
import { redisAvailable } from './helpers/services.js';

const redisUp = await redisAvailable();

/**
 * `/metrics` on the admin listener: the Prometheus text format (checked with a parser of it),
 * the families a dashboard needs, and labels that stay bounded whatever clients send.
 */

let up: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  up = await startUpstream((req, res) => {
    const status = req.url === '/boom' ? 500 : 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  gw = await startGateway({
    admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
    // The built-in denial-spike alert would fire on the random-path flood below (a new series).
    alerts: { defaults: false },
    upstreams: { api: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'api', stripPrefix: '/api', policies: { 'rate-limit': { limits: [{ name: 'tight', key: ['ip'], limit: 3, window: '1m' }] } } },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

async function scrape() {
  const res = await send(gw.runtime.adminUrl!, '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return { text: res.text, families: new Map(parsePrometheusTextFormat(res.text).map((f) => [f.name, f])) };
}

describe('metrics', () => {
  it('exposes the request, latency, denial, upstream, event and process families in the text format', async () => {
    await send(gw.url, '/api/ok');
    await send(gw.url, '/api/boom');
    for (let i = 0; i < 3; i++) await send(gw.url, '/api/ok');
    const { families } = await scrape();
    for (const name of ['rampart_requests_total', 'rampart_request_duration_seconds', 'rampart_upstream_duration_seconds', 'rampart_denials_total', 'rampart_upstream_errors_total', 'rampart_security_events_total', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      expect(families.has(name), name).toBe(true);
    }
    const requests = families.get('rampart_requests_total')!.metrics;
    expect(requests.find((m) => m.labels?.route === 'api' && m.labels.method === 'GET' && m.labels.status_class === '2xx')?.value).toBe('2');
    expect(families.get('rampart_denials_total')!.metrics).toContainEqual({ labels: { route: 'api', policy: 'rate-limit', code: 'RMP_RATE_LIMITED', area: 'RATE' }, value: '2' });
    expect(families.get('rampart_denials_total')!.metrics).toContainEqual({ labels: { route: 'api', policy: 'upstream', code: 'RMP_UPSTREAM_ERROR', area: 'UPSTREAM' }, value: '1' });
    expect(families.get('rampart_upstream_errors_total')!.metrics).toContainEqual({ labels: { route: 'api', upstream: 'api', kind: 'server_error' }, value: '1' });
    expect(families.get('rampart_upstream_duration_seconds')!.type).toBe('HISTOGRAM');
    expect(families.get('rampart_security_events_total')!.metrics.some((m) => m.labels?.type === 'sys_startup')).toBe(true);
    // The 429s by the configured name of the limit that refused them.
    expect(families.get('rampart_rate_limited_total')!.metrics).toEqual([{ labels: { route: 'api', limit: 'tight' }, value: '2' }]);
    expect(families.get('rampart_config_version')!.metrics).toEqual([{ value: String(gw.runtime.ref.current.version) }]);
    expect(families.get('rampart_config_reloads_total')!.metrics).toEqual([
      { labels: { result: 'ok' }, value: '0' },
      { labels: { result: 'rejected' }, value: '0' },
    ]);
    // No Redis and no database in use: no store series.
    expect(families.get('rampart_store_up')?.metrics ?? []).toEqual([]);
  });

  it('label cardinality does not grow with random paths, methods or hostile values', async () => {
    const seriesCount = (text: string) => text.split('\n').filter((l) => l.startsWith('rampart_')).length;
    await send(gw.url, '/nope-warmup');
    await send(gw.url, '/nope-warmup', { method: 'PROPFIND' });
    const before = seriesCount((await scrape()).text);
    for (let i = 0; i < 200; i++) {
      await send(gw.url, `/random-${Math.random().toString(36).slice(2)}/${i}?q=${i}`, { method: i % 2 === 0 ? 'GET' : 'PROPFIND', headers: { 'x-evil': `"} route="${i}` } });
    }
    const { text, families } = await scrape();
    expect(seriesCount(text)).toBe(before);
    const routes = new Set(families.get('rampart_requests_total')!.metrics.map((m) => m.labels?.route));
    expect([...routes].sort()).toEqual(['*', 'api']);
    expect(text).not.toContain('random-');
  });

  it('is not served on the gateway listener', async () => {
    const res = await send(gw.url, '/metrics');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('rampart_requests_total');
  });
});

/** Text-format families of a runtime's registry (no admin listener needed). */
async function familiesOf(gw: TestGateway) {
  const { text } = await gw.runtime.metrics.exposition();
  return new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
}

const series = (families: Awaited<ReturnType<typeof familiesOf>>, name: string) => families.get(name)?.metrics ?? [];

describe('metrics of refusals, reloads and stores', () => {
  const use = closeAfterEach(afterEach);
  const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
  const API_KEY = 'rk_test_0123456789abcdef';
  const jwtPolicy = { secret: SECRET, algorithms: ['HS256'], issuer: 'https://issuer.test', audience: 'api' };
  const keyPolicy = { keys: [{ id: 'k1', hash: `sha256:${createHash('sha256').update(API_KEY).digest('hex')}` }] };
  const token = (claims: Record<string, unknown>, exp: number) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://issuer.test').setAudience('api').setSubject('u1').setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));

  it('counts 401s by route and authentication policy, and 429s by limit name (ip for the per-IP limit)', async () => {
    const upstream = await use.upstream();
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [
        { name: 'jwt-api', match: { path: '/jwt/*' }, upstream: 'app', policies: { jwt: jwtPolicy } },
        { name: 'key-api', match: { path: '/key/*' }, upstream: 'app', policies: { 'api-key': keyPolicy } },
        { name: 'either', match: { path: '/either/*' }, upstream: 'app', policies: { jwt: jwtPolicy, 'api-key': keyPolicy } },
        { name: 'intro', match: { path: '/intro/*' }, upstream: 'app', policies: { introspection: { endpoint: 'http://127.0.0.1:1/introspect', clientId: 'c', clientSecret: 's' } } },
        { name: 'per-ip', match: { path: '/ip/*' }, upstream: 'app', policies: { 'ip-rate-limit': { limit: 1, window: '1m' } } },
      ],
    });
    const now = Math.floor(Date.now() / 1000);
    expect((await send(gw.url, '/jwt/a', { headers: { authorization: `Bearer ${await token({}, now + 300)}` } })).status).toBe(200);
    expect((await send(gw.url, '/jwt/a')).status).toBe(401); // missing
    expect((await send(gw.url, '/jwt/a', { headers: { authorization: 'Bearer not.a.jwt' } })).status).toBe(401); // invalid
    expect((await send(gw.url, '/jwt/a', { headers: { authorization: `Bearer ${await token({}, now - 600)}` } })).status).toBe(401); // expired
    expect((await send(gw.url, '/key/a', { headers: { 'x-api-key': API_KEY } })).status).toBe(200);
    expect((await send(gw.url, '/key/a', { headers: { 'x-api-key': 'rk_test_wrong_wrong_wrong' } })).status).toBe(401);
    expect((await send(gw.url, '/either/a', { headers: { 'x-api-key': 'rk_test_wrong_wrong_wrong' } })).status).toBe(401); // the api-key policy refused it
    expect((await send(gw.url, '/intro/a')).status).toBe(401);
    expect((await send(gw.url, '/ip/a')).status).toBe(200);
    expect((await send(gw.url, '/ip/a')).status).toBe(429);
    expect((await send(gw.url, '/ip/a')).status).toBe(429);
    const families = await familiesOf(gw);
    expect(series(families, 'rampart_auth_failures_total')).toEqual(
      expect.arrayContaining([
        { labels: { route: 'jwt-api', policy: 'jwt' }, value: '3' },
        { labels: { route: 'key-api', policy: 'api-key' }, value: '1' },
        { labels: { route: 'either', policy: 'api-key' }, value: '1' },
        { labels: { route: 'intro', policy: 'introspection' }, value: '1' },
      ]),
    );
    expect(series(families, 'rampart_auth_failures_total')).toHaveLength(4);
    // Hostile credentials and paths add counts, never series.
    for (let i = 0; i < 50; i++) {
      await send(gw.url, `/${i % 2 === 0 ? 'jwt' : 'either'}/${Math.random().toString(36).slice(2)}`, { headers: { authorization: `Bearer "} policy="${i}`, 'x-api-key': `rk_"} route="${i}_${'x'.repeat(20)}` } });
    }
    const after = await familiesOf(gw);
    expect(series(after, 'rampart_auth_failures_total')).toHaveLength(4);
    expect(new Set(series(after, 'rampart_auth_failures_total').map((m) => m.labels!.policy))).toEqual(new Set(['jwt', 'api-key', 'introspection']));
    expect(series(families, 'rampart_rate_limited_total')).toEqual([{ labels: { route: 'per-ip', limit: 'ip' }, value: '2' }]);
    expect(upstream.requests).toHaveLength(3);
  });

  it('counts reloads, ok and rejected, and follows the config version', async () => {
    const upstream = await use.upstream();
    const gw = await use.gateway({ upstreams: { app: { targets: [{ url: upstream.url }] } }, routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }] });
    const started = gw.runtime.ref.current.version;
    expect(series(await familiesOf(gw), 'rampart_config_version')).toEqual([{ value: String(started) }]);
    expect((await gw.runtime.reload()).ok).toBe(true);
    expect((await gw.runtime.reload()).ok).toBe(true);
    const good = readFileSync(gw.configFile, 'utf8');
    writeFileSync(gw.configFile, `${good}\nnot_a_key: 1\n`);
    expect((await gw.runtime.reload()).ok).toBe(false);
    writeFileSync(gw.configFile, good);
    const families = await familiesOf(gw);
    expect(series(families, 'rampart_config_reloads_total')).toEqual([
      { labels: { result: 'ok' }, value: '2' },
      { labels: { result: 'rejected' }, value: '1' },
    ]);
    // Two accepted reloads; the rejected one leaves the version alone.
    expect(series(families, 'rampart_config_version')).toEqual([{ value: String(started + 2) }]);
    expect(gw.runtime.ref.current.version).toBe(started + 2);
  });

  it('reports Redis as down when it does not answer (read from the connection state, no probe)', async () => {
    const upstream = await use.upstream();
    const gw = await use.gateway({
      redis: { url: `redis://127.0.0.1:${await closedPort()}` },
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: { 'rate-limit': { limits: [{ name: 'shared', key: ['ip'], limit: 100, window: '1m', store: 'redis', onStoreFailure: 'open' }] } } }],
    });
    expect((await send(gw.url, '/api/a')).status).toBe(200);
    expect(series(await familiesOf(gw), 'rampart_store_up')).toEqual([{ labels: { store: 'redis' }, value: '0' }]);
  });

  it.skipIf(!redisUp)('reports Redis as up when its connection is ready', async () => {
    const upstream = await use.upstream();
    const gw = await use.gateway({
      redis: { url: 'redis://127.0.0.1:6379/0', keyPrefix: `rampart-test:${Math.random().toString(36).slice(2)}:` },
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: { 'rate-limit': { limits: [{ name: 'shared', key: ['ip'], limit: 100, window: '1m', store: 'redis' }] } } }],
    });
    expect((await send(gw.url, '/api/a')).status).toBe(200);
    expect(series(await familiesOf(gw), 'rampart_store_up')).toEqual([{ labels: { store: 'redis' }, value: '1' }]);
  });

  it('reports the identity database as up', async () => {
    const id = await startIdentityGateway({ backend: 'sqlite' });
    try {
      expect(series(await familiesOf(id.gw), 'rampart_store_up')).toEqual([{ labels: { store: 'database' }, value: '1' }]);
    } finally {
      await id.close();
    }
  });
});
