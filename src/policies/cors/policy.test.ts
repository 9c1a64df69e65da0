import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';
import { ConfigError } from '../../config/errors.js';

const use = closeAfterEach(afterEach);

async function setup(cors: Record<string, unknown> | undefined, methods = ['GET', 'PUT']) {
  const up = await use.upstream((_req, res) => {
    // A permissive upstream: the gateway must not let this through unless the policy allows it.
    res.writeHead(200, { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'content-type': 'application/json' });
    res.end('{}');
  });
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*', methods }, upstream: 'app', ...(cors === undefined ? {} : { policies: { cors } }) }],
  });
  return { gw, up };
}

const configured = { origins: ['https://app.example.com', 'https://*.example.org'], credentials: true };
const preflight = (origin: string, method = 'PUT', headers = 'content-type, authorization') => ({
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) },
});

describe('cors policy', () => {
  it('allows a listed origin on actual requests, with credentials and exposed headers', async () => {
    const { gw } = await setup(configured);
    const res = await send(gw.url, '/api/x', { headers: { origin: 'https://app.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(res.headers['access-control-expose-headers']).toBe('x-request-id');
    expect(res.headers.vary).toBe('Origin');
  });

  it('gives any other origin no CORS headers at all, also none of the upstream', async () => {
    const { gw } = await setup(configured);
    for (const origin of [
      'https://evil.example',
      'https://evil-example.org',
      'https://example.org.evil.net',
      'https://app.example.com.evil.net',
      'https://evilapp.example.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://example.org',
      'null',
    ]) {
      const res = await send(gw.url, '/api/x', { headers: { origin } });
      expect(res.status, origin).toBe(200);
      expect(res.headers['access-control-allow-origin'], origin).toBeUndefined();
      expect(res.headers['access-control-allow-credentials'], origin).toBeUndefined();
      expect(res.headers.vary, origin).toBe('Origin');
    }
    const sub = await send(gw.url, '/api/x', { headers: { origin: 'https://a.b.example.org' } });
    expect(sub.headers['access-control-allow-origin']).toBe('https://a.b.example.org');
  });

  it('answers an allowed preflight itself with 204, even where the route does not list OPTIONS', async () => {
    const { gw, up } = await setup(configured);
    const res = await send(gw.url, '/api/x', preflight('https://app.example.com'));
    expect(res.status).toBe(204);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE',
      'access-control-allow-headers': 'content-type, authorization, x-request-id',
      'access-control-allow-credentials': 'true',
      'access-control-max-age': '600',
      vary: 'Origin',
    });
    expect(up.requests).toHaveLength(0);
  });

  it('refuses a preflight from another origin, for another method or with other headers: 403, no CORS headers', async () => {
    const { gw, up } = await setup({ ...configured, methods: ['GET', 'PUT'] });
    for (const [origin, method, headers] of [
      ['https://evil.example', 'PUT', 'content-type'],
      ['https://example.org.evil.net', 'PUT', ''],
      ['null', 'PUT', ''],
      ['https://app.example.com', 'DELETE', ''],
      ['https://app.example.com', 'PUT', 'content-type, x-evil'],
    ] as const) {
      const res = await send(gw.url, '/api/x', preflight(origin, method, headers));
      expect(res.status, `${origin} ${method} ${headers}`).toBe(403);
      expect(problemOf(res).code).toBe('RMP_CORS_PREFLIGHT_REJECTED');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    }
    expect(up.requests).toHaveLength(0);
  });

  it('is closed by default: preflights refused, the upstream\'s permissive headers removed', async () => {
    const { gw, up } = await setup(undefined);
    const pre = await send(gw.url, '/api/x', preflight('https://app.example.com', 'GET', ''));
    expect(pre.status).toBe(403);
    const res = await send(gw.url, '/api/x', { headers: { origin: 'https://app.example.com' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(up.requests.map((r) => r.method)).toEqual(['GET']);
  });

  it('allows `null` only when listed, and `*` only without credentials', async () => {
    const withNull = await setup({ origins: ['null'] });
    expect((await send(withNull.gw.url, '/api/x', { headers: { origin: 'null' } })).headers['access-control-allow-origin']).toBe('null');
    const star = await setup({ origins: ['*'] });
    const res = await send(star.gw.url, '/api/x', { headers: { origin: 'https://anyone.example' } });
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('refuses `*` with credentials and malformed origins at config load', async () => {
    for (const [cors, message] of [
      [{ origins: ['*'], credentials: true }, "origin '*' cannot be combined with credentials"],
      [{ origins: ['https://app.example.com/path'] }, "invalid origin 'https://app.example.com/path'"],
      [{ origins: ['https://*evil.com'] }, "invalid wildcard origin 'https://*evil.com'"],
      [{ originPatterns: ['(unclosed'] }, "invalid origin pattern '(unclosed'"],
    ] as const) {
      const error = await setup(cors).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]!.path).toBe('routes[0].policies.cors');
      expect((error as ConfigError).issues[0]!.message).toContain(message);
    }
  });

  it('anchors origin patterns at both ends', async () => {
    const { gw } = await setup({ originPatterns: ['https://app[0-9]\\.example\\.com'] });
    expect((await send(gw.url, '/api/x', { headers: { origin: 'https://app1.example.com' } })).headers['access-control-allow-origin']).toBe('https://app1.example.com');
    for (const origin of ['https://app1.example.com.evil.net', 'https://xapp1.example.com']) {
      expect((await send(gw.url, '/api/x', { headers: { origin } })).headers['access-control-allow-origin'], origin).toBeUndefined();
    }
  });
});
