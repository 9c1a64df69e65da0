// Regression (security review): `\`, `;params` and escaped separators let dot segments past the
// check, escaping a route's prefix and the target's base path on upstreams that read `\` as `/`
// (WHATWG URL, IIS) or cut `;` (Tomcat, Spring); a raw `#` split the router's view of the path
// from what a rewrite forwarded.
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';
import { problemOf, send, sendRaw } from '../helpers/http.js';

const use = closeAfterEach(afterEach);

it('path-bypass-via-backslash-semicolon-fragment: refused with 400, never forwarded', async () => {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: `${up.url}/svc/v1` }] } },
    routes: [
      { name: 'public', match: { path: '/public/*' }, upstream: 'app', stripPrefix: '/public' },
      { name: 'user', match: { path: '/users/:id' }, upstream: 'app', rewrite: '/internal/users/:id/public-profile' },
    ],
  });
  for (const path of [
    '/public/..\\..\\..\\internal\\secret',
    '/public/x/..\\admin',
    '/public/x\\y',
    '/public/x/..;/admin',
    '/public/x/%2e%2e;/admin',
    '/public/x/.;jsessionid=1/admin',
    '/public/x/..%2Fadmin',
    '/public/x/..%2fadmin',
    '/public/x/..%5Cadmin',
    '/public/x%2F..%2Fadmin',
  ]) {
    const res = await send(gw.url, path);
    expect(res.status, path).toBe(400);
    expect(problemOf(res).code, path).toBe('RMP_REQUEST_MALFORMED');
  }
  for (const target of ['/users/alice#', '/users/alice#x', '/users/alice?q=1#frag']) {
    const raw = await sendRaw(gw.url, `GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
    expect(raw, target).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw, target).toContain('"code":"RMP_REQUEST_MALFORMED"');
  }
  expect(up.requests).toHaveLength(0);

  // What stays allowed: `;` inside a segment that is not a dot segment, dots inside names, `%2F` in a parameter.
  for (const [path, forwarded] of [
    ['/public/a;b=1/c', '/svc/v1/a;b=1/c'],
    ['/public/v1.2/file..txt', '/svc/v1/v1.2/file..txt'],
    ['/users/a%2Fb', '/svc/v1/internal/users/a%2Fb/public-profile'],
  ] as const) {
    expect((await send(gw.url, path)).status, path).toBe(200);
    expect(up.requests.at(-1)!.url).toBe(forwarded);
  }
});
