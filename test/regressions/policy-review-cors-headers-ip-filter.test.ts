// Regressions from the review of the cors, headers and ip-filter policies (one test per finding).
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { closeAfterEach } from '../helpers/gateway.js';
import { problemOf, send, sendRaw } from '../helpers/http.js';

const use = closeAfterEach(afterEach);

async function gateway(extra: Record<string, unknown>, route: Record<string, unknown> = {}) {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*', methods: ['GET'] }, upstream: 'app', ...route }],
    ...extra,
  });
  return { gw, up };
}

const configError = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ConfigError);

describe('policy review regressions', () => {
  it('cors-null-or-any-pattern-with-credentials: refused at load', async () => {
    for (const cors of [
      { origins: ['https://app.example.com', 'null'], credentials: true },
      { originPatterns: ['.*'], credentials: true },
      { originPatterns: ['https://.*'], credentials: true },
    ]) {
      const error = await configError(gateway({ defaults: { cors } }));
      expect(error, JSON.stringify(cors)).toBeInstanceOf(ConfigError);
      expect(error!.issues[0]!.message).toMatch(/cannot be combined with credentials/);
    }
  });

  it('cors-pattern-breaks-anchoring: a pattern that closes the anchoring group is refused', async () => {
    const error = await configError(gateway({ defaults: { cors: { originPatterns: ['https://a\\.example\\.com)|(https://b\\.example\\.com'] } } }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.issues[0]!.message).toContain('invalid origin pattern');
  });

  it('ip-filter-fails-open-on-ip-port: X-Forwarded-For with ports, brackets, zones or junk cannot pass a deny list', async () => {
    const { gw, up } = await gateway({ server: { trustedProxies: ['loopback'] }, defaults: { 'ip-filter': { deny: ['203.0.113.0/24', '2001:db8::/32'] } } });
    for (const xff of ['203.0.113.5:4711', '[2001:db8::1]:443', '[2001:db8::1]', '2001:db8::1%eth0', 'unknown']) {
      const res = await send(gw.url, '/api/x', { headers: { 'x-forwarded-for': xff } });
      expect(res.status, xff).toBe(403);
      expect(problemOf(res).code).toBe('RMP_IP_DENIED');
    }
    expect((await send(gw.url, '/api/x', { headers: { 'x-forwarded-for': '198.51.100.1:80' } })).status).toBe(200);
    expect(up.requests).toHaveLength(1);
  });

  it('security-headers-missing-on-early-refusals: bad URLs, parser errors and CONNECT carry them', async () => {
    const { gw } = await gateway({});
    const bad = await send(gw.url, '/api/%zz', { headers: { 'x-request-id': 'early-1' } });
    expect(bad.status).toBe(400);
    expect(bad.headers['x-content-type-options']).toBe('nosniff');
    expect(bad.headers['x-frame-options']).toBe('DENY');
    const id = bad.headers['x-request-id'];
    expect(id).toEqual(expect.any(String));
    expect(problemOf(bad).requestId).toBe(id);
    await gw.logs.waitFor((l) => l.type === 'access' && l.requestId === id && l.status === 400);
    for (const raw of ['GET /api/x HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n']) {
      const answer = await sendRaw(gw.url, raw);
      expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /);
      expect(answer).toContain('X-Content-Type-Options: nosniff');
      expect(answer).toContain("Content-Security-Policy: default-src 'none'");
    }
  });

  it('local-reply-overrides-refusal: a preflight cannot turn a 404, 405 or malformed path into a 204', async () => {
    const { gw, up } = await gateway({ defaults: { cors: { origins: ['https://app.example.com'] } } });
    const preflight = (path: string, method: string) =>
      send(gw.url, path, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': method } });
    expect((await preflight('/nope', 'GET')).status).toBe(404);
    const wrongMethod = await preflight('/api/x', 'DELETE');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers['access-control-allow-origin']).toBeUndefined();
    expect((await preflight('/api/../admin', 'GET')).status).toBe(400);
    expect((await preflight('/api/x', 'GET')).status).toBe(204);
    expect(up.requests).toHaveLength(0);
  });

  it('hsts-from-client-controlled-proto: only the nearest trusted proxy decides HTTPS', async () => {
    const { gw } = await gateway({ server: { trustedProxies: ['loopback'] } });
    expect((await send(gw.url, '/api/x', { headers: { 'x-forwarded-proto': 'https, http' } })).headers['strict-transport-security']).toBeUndefined();
    expect((await send(gw.url, '/api/x', { headers: { 'x-forwarded-proto': 'http, https' } })).headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
  });
});
