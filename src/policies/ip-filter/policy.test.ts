import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';
import { ConfigError } from '../../config/errors.js';

const use = closeAfterEach(afterEach);

async function setup(config: { defaults?: Record<string, unknown>; route?: Record<string, unknown>; trusted?: string[] }) {
  const up = await use.upstream();
  const gw = await use.gateway({
    server: { trustedProxies: config.trusted ?? [] },
    upstreams: { app: { targets: [{ url: up.url }] } },
    defaults: config.defaults ?? {},
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: config.route ?? {} },
      { name: 'open', match: { path: '/open/*' }, upstream: 'app' },
    ],
  });
  return { gw, up };
}

async function denied(base: string, path: string, headers: Record<string, string> = {}) {
  const res = await send(base, path, { headers });
  if (res.status === 200) return false;
  expect(res.status).toBe(403);
  expect(problemOf(res).code).toBe('RMP_IP_DENIED');
  return true;
}

describe('ip-filter policy', () => {
  it('refuses addresses on the deny list and never calls the upstream for them', async () => {
    const { gw, up } = await setup({ route: { 'ip-filter': { deny: ['127.0.0.0/8'] } } });
    expect(await denied(gw.url, '/api/x')).toBe(true);
    expect(await denied(gw.url, '/open/x')).toBe(false);
    expect(up.requests.map((r) => r.url)).toEqual(['/open/x']);
  });

  it('serves only the allow list when there is one; deny wins over allow', async () => {
    const allowOther = await setup({ defaults: { 'ip-filter': { allow: ['10.0.0.0/8', '2001:db8::/32'] } } });
    expect(await denied(allowOther.gw.url, '/api/x')).toBe(true);
    expect(await denied(allowOther.gw.url, '/open/x')).toBe(true);
    const allowLocal = await setup({ defaults: { 'ip-filter': { allow: ['loopback'] } }, route: { 'ip-filter': { deny: ['127.0.0.1'] } } });
    expect(await denied(allowLocal.gw.url, '/open/x')).toBe(false);
    expect(await denied(allowLocal.gw.url, '/api/x')).toBe(true);
  });

  it('judges the client address the trusted-proxy rules give, not a spoofed X-Forwarded-For', async () => {
    const untrusted = await setup({ route: { 'ip-filter': { allow: ['203.0.113.0/24'] } } });
    expect(await denied(untrusted.gw.url, '/api/x', { 'x-forwarded-for': '203.0.113.7' })).toBe(true);
    const trusted = await setup({ trusted: ['127.0.0.1'], route: { 'ip-filter': { deny: ['198.51.100.0/24', '::ffff:192.0.2.0/120'] } } });
    expect(await denied(trusted.gw.url, '/api/x', { 'x-forwarded-for': '198.51.100.9' })).toBe(true);
    expect(await denied(trusted.gw.url, '/api/x', { 'x-forwarded-for': '192.0.2.5' })).toBe(true);
    expect(await denied(trusted.gw.url, '/api/x', { 'x-forwarded-for': '203.0.113.7' })).toBe(false);
  });

  it('refuses an invalid range at config load, where it is written', async () => {
    const error = await setup({ route: { 'ip-filter': { deny: ['10.0.0.0/33'] } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]).toMatchObject({ path: 'routes[0].policies.ip-filter' });
    expect((error as ConfigError).issues[0]!.message).toContain("invalid deny entry '10.0.0.0/33'");
  });
});
