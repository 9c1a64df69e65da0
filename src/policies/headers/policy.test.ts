import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

const DEFAULTS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

async function setup(extra: Record<string, unknown> = {}, route: Record<string, unknown> = {}) {
  const up = await use.upstream((req, res) => {
    if (req.url === '/api/typed') {
      res.writeHead(200, { 'content-type': 'application/problem+json', server: 'Apache/2.4.1', 'x-powered-by': 'PHP/5.6' });
      return res.end('{}');
    }
    res.writeHead(200, {
      'content-type': req.url === '/api/text' ? 'text/plain' : 'application/json',
      server: 'nginx/1.2.3',
      'x-powered-by': 'Express',
      'x-aspnet-version': '4.0',
      ...(req.url === '/api/cached' ? { 'cache-control': 'max-age=60' } : {}),
      'x-frame-options': 'ALLOWALL',
    } as Record<string, string>);
    res.end('{"ok":true}');
  });
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', ...route }],
    ...extra,
  });
  return { gw, up };
}

describe('headers policy', () => {
  it('sets every default header exactly on a proxied response and strips upstream banners; no HSTS over HTTP', async () => {
    const { gw } = await setup();
    const res = await send(gw.url, '/api/x');
    expect(res.status).toBe(200);
    for (const [name, value] of Object.entries(DEFAULTS)) expect(res.headers[name], name).toBe(value);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(res.headers.server).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-aspnet-version']).toBeUndefined();
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBeUndefined();
  });

  it('sets them on problem responses too', async () => {
    const { gw } = await setup();
    const res = await send(gw.url, '/nowhere');
    expect(problemOf(res).code).toBe('RMP_ROUTE_NOT_FOUND');
    for (const [name, value] of Object.entries(DEFAULTS)) expect(res.headers[name], name).toBe(value);
  });

  it('sends HSTS when a trusted proxy says the client used HTTPS, never when an untrusted client says so', async () => {
    const untrusted = await setup();
    const spoofed = await send(untrusted.gw.url, '/api/x', { headers: { 'x-forwarded-proto': 'https' } });
    expect(spoofed.headers['strict-transport-security']).toBeUndefined();

    const trusted = await setup({ server: { trustedProxies: ['127.0.0.1'] } });
    const viaProxy = await send(trusted.gw.url, '/api/x', { headers: { 'x-forwarded-proto': 'http, https' } });
    expect(viaProxy.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const plain = await send(trusted.gw.url, '/api/x', { headers: { 'x-forwarded-proto': 'http' } });
    expect(plain.headers['strict-transport-security']).toBeUndefined();
  });

  it('adds a charset only to bare JSON types', async () => {
    const { gw } = await setup();
    expect((await send(gw.url, '/api/typed')).headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect((await send(gw.url, '/api/text')).headers['content-type']).toBe('text/plain');
  });

  it('is configurable per route: values, off, cache-control, HSTS preload', async () => {
    const { gw } = await setup(
      { server: { trustedProxies: ['127.0.0.1'] } },
      {
        policies: {
          headers: { frameOptions: 'SAMEORIGIN', contentSecurityPolicy: 'off', cacheControl: 'no-store', hsts: { preload: true, maxAge: '2h' }, remove: ['x-powered-by'] },
        },
      },
    );
    const res = await send(gw.url, '/api/x', { headers: { 'x-forwarded-proto': 'https' } });
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['content-security-policy']).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['strict-transport-security']).toBe('max-age=7200; includeSubDomains; preload');
    // Only the listed header is removed now.
    expect(res.headers.server).toBe('nginx/1.2.3');
    expect(res.headers['x-powered-by']).toBeUndefined();
    // An upstream's own Cache-Control wins over the route's fallback.
    expect((await send(gw.url, '/api/cached')).headers['cache-control']).toBe('max-age=60');
  });

  it('sends Cache-Control: no-store on every response to a request with credentials, replacing the upstream\'s', async () => {
    const { gw } = await setup();
    // The upstream says its answer may be cached for a minute: not when it answered a user.
    expect((await send(gw.url, '/api/cached')).headers['cache-control']).toBe('max-age=60');
    expect((await send(gw.url, '/api/cached', { headers: { authorization: 'Bearer abc' } })).headers['cache-control']).toBe('no-store');
    expect((await send(gw.url, '/api/cached', { headers: { cookie: 'session=abc' } })).headers['cache-control']).toBe('no-store');
    expect((await send(gw.url, '/api/x', { headers: { authorization: 'Basic eDp5' } })).headers['cache-control']).toBe('no-store');
    expect((await send(gw.url, '/nowhere', { headers: { authorization: 'Bearer abc' } })).headers['cache-control']).toBe('no-store');
    const off = await setup({}, { policies: { headers: { authenticatedCacheControl: 'off' } } });
    expect((await send(off.gw.url, '/api/cached', { headers: { authorization: 'Bearer abc' } })).headers['cache-control']).toBe('max-age=60');
  });

  it('can be turned off for a route', async () => {
    const { gw } = await setup({}, { policies: { headers: false } });
    const res = await send(gw.url, '/api/x');
    expect(res.headers['x-frame-options']).toBe('ALLOWALL');
    expect(res.headers.server).toBe('nginx/1.2.3');
    expect(res.headers['content-security-policy']).toBeUndefined();
  });
});
