import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';
import type { ConfigError } from '../../config/errors.js';
import { formatIssue } from '../../config/errors.js';
import { addressKey } from './limits.js';
import { IpRateLimitSchema } from '../ip-rate-limit/schema.js';
import { loadConfigText } from '../../config/load.js';
import { buildPipeline } from '../../gateway/pipeline.js';
import { createLogger } from '../../observability/logger.js';
import { createEvents } from '../../observability/events.js';

const use = closeAfterEach(afterEach);

async function setup(config: { defaults?: Record<string, unknown>; policies?: Record<string, unknown>; server?: Record<string, unknown> } = {}) {
  const up = await use.upstream();
  const gw = await use.gateway({
    ...(config.defaults !== undefined ? { defaults: config.defaults } : {}),
    ...(config.server !== undefined ? { server: config.server } : {}),
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: config.policies ?? {} },
      { name: 'other', match: { path: '/other' }, upstream: 'app' },
    ],
  });
  return { gw, up };
}

describe('rate-limit policy (memory store, over HTTP)', () => {
  it('admits the limit, then 429 RMP_RATE_LIMITED with exact Retry-After and RateLimit headers; the upstream never sees a limited request', async () => {
    const { gw, up } = await setup({
      policies: { 'rate-limit': { limits: [{ name: 'burst', key: ['ip'], algorithm: 'gcra', limit: 3, window: '60s' }] } },
    });
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await send(gw.url, '/api/x');
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-policy']).toBe('"burst";q=3;w=60');
      seen.push(String(res.headers.ratelimit));
    }
    // One request per 20 s on average, 3 at once: r counts down, t is when the bucket is whole again.
    expect(seen).toEqual(['"burst";r=2;t=20', '"burst";r=1;t=40', '"burst";r=0;t=60']);
    const limited = await send(gw.url, '/api/x');
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(problemOf(limited)).toMatchObject({ code: 'RMP_RATE_LIMITED', status: 429 });
    expect(limited.headers['retry-after']).toBe('20');
    expect(limited.headers['ratelimit-policy']).toBe('"burst";q=3;w=60');
    expect(limited.headers.ratelimit).toBe('"burst";r=0;t=60');
    expect(limited.headers['x-content-type-options']).toBe('nosniff');
    expect(up.requests).toHaveLength(3);
    // Another route has no such limit.
    expect((await send(gw.url, '/other')).status).toBe(200);
  });

  it('applies several limits in order (10/s and 5/min here), each with its own counter and header item', async () => {
    const { gw, up } = await setup({
      policies: {
        'rate-limit': {
          limits: [
            { name: 'second', key: ['ip'], algorithm: 'fixed-window', limit: 10, window: '1s' },
            { name: 'minute', key: ['ip'], algorithm: 'sliding-window', limit: 5, window: '1m' },
          ],
        },
      },
    });
    const statuses: number[] = [];
    let last = await send(gw.url, '/api/x');
    statuses.push(last.status);
    for (let i = 0; i < 5; i++) {
      last = await send(gw.url, '/api/x');
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(last.headers['ratelimit-policy']).toBe('"second";q=10;w=1, "minute";q=5;w=60');
    expect(problemOf(last).detail).toBe("Rate limit 'minute' exceeded.");
    expect(up.requests).toHaveLength(5);
  });

  it('keys by a header: each tenant has its own counter; a missing header is one shared bucket', async () => {
    const { gw } = await setup({ policies: { 'rate-limit': { headers: 'none', limits: [{ key: ['header:x-tenant'], algorithm: 'fixed-window', limit: 1, window: '1m' }] } } });
    expect((await send(gw.url, '/api/x', { headers: { 'x-tenant': 'a' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { headers: { 'x-tenant': 'a' } })).status).toBe(429);
    const b = await send(gw.url, '/api/x', { headers: { 'x-tenant': 'b' } });
    expect(b.status).toBe(200);
    expect(b.headers.ratelimit).toBeUndefined(); // headers: none
    expect((await send(gw.url, '/api/x')).status).toBe(200);
    expect((await send(gw.url, '/api/x')).status).toBe(429);
  });
});

describe('ip-rate-limit policy (default on)', () => {
  it('limits each client address across every route, with headers only on the 429 by default', async () => {
    const { gw, up } = await setup({ defaults: { 'ip-rate-limit': { limit: 3, window: '1m', algorithm: 'fixed-window' } } });
    const ok = await send(gw.url, '/api/x');
    expect(ok.status).toBe(200);
    expect(ok.headers.ratelimit).toBeUndefined();
    expect((await send(gw.url, '/other')).status).toBe(200);
    // A request no route matches counts too (probing is not free).
    expect((await send(gw.url, '/nope')).status).toBe(404);
    const limited = await send(gw.url, '/other');
    expect(limited.status).toBe(429);
    expect(problemOf(limited).code).toBe('RMP_RATE_LIMITED');
    expect(limited.headers['ratelimit-policy']).toBe('"ip";q=3;w=60');
    expect(limited.headers.ratelimit).toMatch(/^"ip";r=0;t=\d+$/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect((await send(gw.url, '/nope')).status).toBe(429);
    expect(up.requests).toHaveLength(2);
  });

  it('is on by default at 600 per minute (GCRA, burst 600), documented in the config reference', () => {
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    const loaded = loadConfigText('upstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:1" }]\nroutes:\n  - name: r\n    match: { path: /r }\n    upstream: a\n    public: true\n', 'rampart.yaml', '/tmp');
    const pipeline = buildPipeline(loaded, { logger, events: createEvents(logger) });
    expect(pipeline.routes[0]!.policies.map((p) => p.name)).toContain('ip-rate-limit');
    expect(pipeline.fallback.policies.map((p) => p.name)).toContain('ip-rate-limit');
    void pipeline.close();
    const defaults = IpRateLimitSchema.properties;
    expect([defaults.limit.default, defaults.window.default, defaults.algorithm.default, defaults.burst.default]).toEqual([600, '1m', 'gcra', undefined]);
  });

  it('refuses limits it cannot apply, at load, with positions', () => {
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    const errorsOf = (yaml: string) => {
      try {
        buildPipeline(loadConfigText(yaml, 'rampart.yaml', '/tmp'), { logger, events: createEvents(logger) });
        return [];
      } catch (error) {
        return (error as ConfigError).issues.map(formatIssue);
      }
    };
    const base = 'upstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:1" }]\nroutes:\n  - name: r\n    match: { path: /r }\n    upstream: a\n    public: true\n    policies:\n      rate-limit:\n        limits:\n';
    expect(errorsOf(`${base}          - { limit: 5, window: 1m, store: redis }\n`)).toEqual([
      "rampart.yaml:11:9: routes[0].policies.rate-limit: policy 'rate-limit': limit 'r.0': store 'redis' needs the top-level 'redis' settings",
    ]);
    expect(errorsOf(`${base}          - { limit: 5, window: 1m, algorithm: fixed-window, burst: 3 }\n`)[0]).toMatch(/'burst' applies to the gcra algorithm only/);
    expect(errorsOf(`${base}          - { limit: 5, window: 500ms }\n`)[0]).toMatch(/the window must be at least 1s/);
    expect(errorsOf(`${base}          - { limit: 5, window: 1m, key: [cookie] }\n`)[0]).toMatch(/expected ip, consumer, apiKey, route or header:<name>, got 'cookie'/);
  });
});

describe('rate-limit keys', () => {
  it('ipv6-address-rotation: IPv6 clients are counted by their /64, IPv4 (and IPv4-mapped) by address', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::ffff:c000:0207')).toBe('192.0.2.7');
    expect(addressKey('not-an-ip')).toBe('not-an-ip');
  });

  it('ipv6-address-rotation: over HTTP, two addresses of one /64 share a counter', async () => {
    const { gw } = await setup({
      server: { trustedProxies: ['127.0.0.1'] },
      policies: { 'rate-limit': { headers: 'none', limits: [{ key: ['ip'], algorithm: 'fixed-window', limit: 1, window: '1m' }] } },
    });
    expect((await send(gw.url, '/api/x', { headers: { 'x-forwarded-for': '2001:db8:1:2::1' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { headers: { 'x-forwarded-for': '2001:db8:1:2::9999' } })).status).toBe(429);
    expect((await send(gw.url, '/api/x', { headers: { 'x-forwarded-for': '2001:db8:1:3::1' } })).status).toBe(200);
  });
});

describe('rate-limit counters', () => {
  it('same-name-different-settings: limits named alike but counting differently do not reset each other', async () => {
    const up = await use.upstream();
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [
        { name: 'a', match: { path: '/a' }, upstream: 'app', policies: { 'rate-limit': { limits: [{ name: 'shared', key: ['ip'], algorithm: 'fixed-window', limit: 3, window: '1m' }] } } },
        { name: 'b', match: { path: '/b' }, upstream: 'app', policies: { 'rate-limit': { limits: [{ name: 'shared', key: ['ip'], algorithm: 'gcra', limit: 3, window: '1m' }] } } },
      ],
    });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await send(gw.url, i % 2 === 0 ? '/a' : '/b')).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(6);
  });

  it('composite-key-collision: header values cannot spell another client\'s composite key', async () => {
    const { gw } = await setup({ policies: { 'rate-limit': { headers: 'none', limits: [{ key: ['header:x-a', 'header:x-b'], algorithm: 'fixed-window', limit: 1, window: '1m' }] } } });
    expect((await send(gw.url, '/api/x', { headers: { 'x-a': '1|x-b=2', 'x-b': '3' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { headers: { 'x-a': '1', 'x-b': '2|x-b=3' } })).status).toBe(200);
  });
});
