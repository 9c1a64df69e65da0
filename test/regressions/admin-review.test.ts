import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { pino } from 'pino';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.js';
import { freshStorage, postgresAvailable } from '../helpers/identity.js';
import { problemOf, send } from '../helpers/http.js';
import { maskConfig } from '../../src/admin/mask.js';
import { redactUrl } from '../../src/stores/stores.js';
import { AuditSink } from '../../src/observability/audit-sink.js';
import { openStorage } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';

/** Regressions from the hostile review of the admin API (issue 9). */

const TOKEN = 'regression-admin-token-0123456789abcdef';
let upstream: TestUpstream;
let gw: TestGateway;
let admin: string;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'open', match: { path: '/open/*' }, upstream: 'app' },
      { name: 'keyed', match: { path: '/keyed/*' }, upstream: 'app', policies: { 'api-key': { keys: [{ id: 'k1', hash: 'sha256:' + '0'.repeat(64) }] } } },
    ],
  });
  admin = gw.runtime.adminUrl!;
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

function raw(base: string, text: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(text));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('admin review', () => {
  it('admin-auth-bypass-encoded-path: the admin API authenticates by the route matched, whatever the URL spelling', async () => {
    for (const path of ['/%61pi/config', '/api/%63onfig', '/%61pi/events', '/%61pi/users']) {
      const res = await send(admin, path);
      expect(res.status, path).toBe(401);
      expect(problemOf(res).code).toBe('RMP_ADMIN_AUTH_REQUIRED');
    }
    const absolute = await raw(admin, 'GET http://x/api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(absolute).toMatch(/^HTTP\/1\.1 401 /);
    const head = await send(admin, '/api/config', { method: 'HEAD' });
    expect(head.status).toBe(401);
    const post = await send(admin, '/%61pi/apikeys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(401);
  });

  it('admin-live-null-principal-crash: an unauthenticated live stream is refused and the process stays up', async () => {
    const res = await send(admin, '/%61pi/live');
    expect(res.status).toBe(401);
    expect((await send(admin, '/healthz')).status).toBe(200);
  });

  it('admin-session-cookie-forwarded-upstream: the console cookie never reaches an upstream (cookies are not scoped by port)', async () => {
    const login = await send(admin, '/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    expect(cookie).toMatch(/^__Host-rampart-admin=/);
    const before = upstream.requests.length;
    await send(gw.url, '/open/x', { headers: { cookie: `${cookie}; theme=dark` } });
    expect(upstream.requests[before]!.headers.cookie).toBe('theme=dark');
  });

  it('denial-events-suppressed-by-fixed-request-id: every denial is an event, whatever request id the client sends', async () => {
    const id = `attacker-fixed-${Date.now()}`;
    for (let i = 0; i < 5; i++) expect((await send(gw.url, '/keyed/x', { headers: { 'x-request-id': id } })).status).toBe(401);
    const events = await send(admin, `/api/events?requestId=${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(events.json<{ items: unknown[] }>().items).toHaveLength(5);
  });

  it('admin-dns-rebinding: the loopback admin listener answers only loopback Host names', async () => {
    const port = new URL(admin).port;
    const evil = await send(admin, '/metrics', { headers: { host: `rebind.evil.example:${port}` } });
    expect(evil.status).toBe(421);
    expect(problemOf(evil).code).toBe('RMP_ADMIN_HOST_REFUSED');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) expect((await send(admin, '/healthz', { headers: { host } })).status, host).toBe(200);
  });

  it('admin-bearer-guessing-unlimited: wrong bearer tokens are limited per address (429 past the limit)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await send(admin, '/api/overview', { headers: { authorization: `Bearer wrong-token-${i}-aaaaaaaaaaaaaaaaaaaaaaaa` } })).status);
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses).toContain(429);
  });

  it('admin-malformed-http-json: unparseable HTTP on the admin listener gets a problem+json', async () => {
    const answer = await raw(admin, 'GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('application/problem+json');
    expect(answer).toContain('RMP_REQUEST_MALFORMED');
  });

  it('config-mask-webhook-url-and-query-secrets: webhook URLs, query-string passwords and tokens are masked', () => {
    const masked = maskConfig({
      redis: { url: 'redis://default:pw1@127.0.0.1:6399/0?password=querypw&db=2' },
      storage: { url: 'postgres://u@db/x?password=pgpw&sslmode=require' },
      alerts: { webhooks: { slack: { url: 'https://hooks.slack.com/services/T000/B000/XXXXSECRET', secret: 's'.repeat(40) } } },
      routes: [{ policies: { jwt: { jwksUrl: 'https://idp.example/jwks?access_token=tok123' } } }],
    }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const text = JSON.stringify(masked);
    for (const secret of ['pw1', 'querypw', 'pgpw', 'XXXXSECRET', 'T000', 'tok123', 's'.repeat(40)]) expect(text).not.toContain(secret);
    expect(masked.alerts.webhooks.slack.url).toBe('https://hooks.slack.com/********');
    expect(masked.storage.url).toContain('sslmode=require');
    expect(redactUrl('redis://default:pw1@127.0.0.1:6399/0?password=querypw')).not.toMatch(/pw1|querypw/);
  });
});

const pgUp = await postgresAvailable();
describe.skipIf(!pgUp)('admin review on PostgreSQL', () => {
  it('audit-type-prefix-on-postgres: a type prefix matches exactly the types that start with it', async () => {
    const storage = await freshStorage('postgres');
    const s = openStorage(storage.url, '/');
    try {
      await migrateToLatest(s.db);
      const sink = new AuditSink(s.db, pino({ level: 'silent' }), 'postgres');
      for (const type of ['authn_login_fail', 'authnx_other', 'authz_fail', 'authn_token_reuse']) sink.sink({ type, level: 'WARN', description: 't', event: type, time: new Date().toISOString() });
      const page = await sink.list({ type: 'authn_' }, 10);
      expect(page.items.map((e) => e.type).sort()).toEqual(['authn_login_fail', 'authn_token_reuse']);
    } finally {
      await s.close();
      await storage.drop();
    }
  });
});
