// Regression (security review): `admin.example.com.` skipped the route scoped to
// admin.example.com, and Host values such as `x@admin.example.com` were forwarded as is.
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';
import { problemOf, send } from '../helpers/http.js';

const use = closeAfterEach(afterEach);

it('host-header-canonical: one canonical host for routing and forwarding; invalid Host refused', async () => {
  const up = await use.upstream((req, res) => res.end(req.url));
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }], host: 'preserve' } },
    routes: [
      { name: 'admin-host', match: { path: '/*', host: 'admin.example.com' }, upstream: 'app', rewrite: '/admin/*' },
      { name: 'any', match: { path: '/*' }, upstream: 'app', rewrite: '/any/*' },
    ],
  });
  for (const host of ['admin.example.com', 'ADMIN.example.com', 'admin.example.com.', 'admin.example.com.:8080']) {
    const res = await send(gw.url, '/x', { headers: { host } });
    expect(res.text, host).toBe('/admin/x');
  }
  expect(up.requests.at(-1)!.headers.host).toBe('admin.example.com:8080');
  expect(up.requests.at(-1)!.headers['x-forwarded-host']).toBe('admin.example.com:8080');
  const before = up.requests.length;
  for (const host of ['x@admin.example.com', 'admin.example.com%2e', 'admin example.com', 'admin.example.com:80:80', 'a..b']) {
    const res = await send(gw.url, '/x', { headers: { host } });
    expect(res.status, host).toBe(400);
    expect(problemOf(res).code, host).toBe('RMP_REQUEST_MALFORMED');
  }
  expect(up.requests).toHaveLength(before);
  // IPv4 and bracketed IPv6 hosts are fine.
  expect((await send(gw.url, '/x', { headers: { host: '127.0.0.1:1' } })).text).toBe('/any/x');
  expect((await send(gw.url, '/x', { headers: { host: '[::1]:8080' } })).text).toBe('/any/x');
});
