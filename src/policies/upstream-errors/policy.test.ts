import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

const STACK = 'TypeError: Cannot read properties of undefined\n    at handler (/srv/app/routes/users.js:42:13)\n    at pg.query SELECT password_hash FROM users';

async function setup(policies: Record<string, unknown> = {}) {
  const up = await use.upstream((req, res) => {
    const status = Number(req.url!.split('/')[2]);
    const headers: Record<string, string> = { 'content-type': 'text/html', 'x-powered-by': 'Express', 'x-internal-host': 'db-7.internal', 'set-cookie': 'debug=1' };
    if (status === 503 || status === 429) headers['retry-after'] = req.url!.endsWith('/bad') ? 'soon; rm -rf' : '7';
    res.writeHead(status, headers);
    res.end(status === 200 ? '<p>ok</p>' : `<pre>${STACK}</pre>`);
  });
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'app', policies },
      { name: 'raw', match: { path: '/raw/*' }, upstream: 'app', stripPrefix: '/raw', policies: { 'upstream-errors': false } },
    ],
  });
  return { gw, up };
}

function expectNoLeak(res: { text: string; headers: Record<string, unknown> }): void {
  const all = res.text + JSON.stringify(res.headers);
  for (const leak of ['TypeError', '/srv/app', 'SELECT', 'Express', 'db-7', 'debug=1']) expect(all).not.toContain(leak);
}

describe('upstream-errors policy', () => {
  it('replaces every 5xx by 502 RMP_UPSTREAM_ERROR with none of the upstream\'s body or headers; logs status and body', async () => {
    const { gw } = await setup();
    for (const status of [500, 501, 502, 504, 599]) {
      const res = await send(gw.url, `/api/${status}`);
      expect(res.status, String(status)).toBe(502);
      expect(problemOf(res)).toMatchObject({ code: 'RMP_UPSTREAM_ERROR', status: 502, title: 'Upstream error' });
      expect(res.headers['x-request-id']).toBeDefined();
      expectNoLeak(res);
    }
    const logged = await gw.logs.waitFor((l) => l.msg === 'upstream answer refused' && l.upstreamStatus === 500);
    expect(String(logged.upstreamBody)).toContain('TypeError');
    expect(logged).toMatchObject({ code: 'RMP_UPSTREAM_ERROR', route: 'api' });
  });

  it('keeps a valid Retry-After of a 503, drops a malformed one', async () => {
    const { gw } = await setup();
    const res = await send(gw.url, '/api/503');
    expect([res.status, res.headers['retry-after']]).toEqual([502, '7']);
    const bad = await send(gw.url, '/api/503/bad');
    expect(bad.headers['retry-after']).toBeUndefined();
  });

  it('reads a discarded body to the end (the upstream connection stays open for reuse); past the bound it cuts it', async () => {
    const sockets: Socket[] = [];
    const up = await use.upstream((req, res) => {
      sockets.push(req.socket);
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(STACK.repeat(req.url === '/api/huge' ? 2000 : 100));
    });
    // undici keeps a connection only if the upstream's keep-alive hint is over 2 s (its threshold).
    up.server.keepAliveTimeout = 10_000;
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: { limits: { response: { buffer: '64KiB' } } } }],
    });
    expect((await send(gw.url, '/api/small')).status).toBe(502);
    expect((await send(gw.url, '/api/small')).status).toBe(502);
    expect(sockets[1]).toBe(sockets[0]);
    expect((await send(gw.url, '/api/huge')).status).toBe(502);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sockets[2]!.destroyed).toBe(true);
  });

  it('passes 4xx by default; clientErrors: replace keeps the status with RMP_UPSTREAM_CLIENT_ERROR', async () => {
    const passed = await setup();
    const res = await send(passed.gw.url, '/api/404');
    expect(res.status).toBe(404);
    expect(res.text).toContain('TypeError');
    const replaced = await setup({ 'upstream-errors': { clientErrors: 'replace' } });
    for (const status of [400, 404, 409, 429]) {
      const r = await send(replaced.gw.url, `/api/${status}`);
      expect(r.status, String(status)).toBe(status);
      expect(problemOf(r)).toMatchObject({ code: 'RMP_UPSTREAM_CLIENT_ERROR', status });
      expectNoLeak(r);
    }
    expect((await send(replaced.gw.url, '/api/429')).headers['retry-after']).toBe('7');
    expect((await send(replaced.gw.url, '/api/200')).text).toBe('<p>ok</p>');
  });

  it('serverErrors: pass, or the policy off, forwards the upstream\'s 5xx as it is', async () => {
    const { gw } = await setup({ 'upstream-errors': { serverErrors: 'pass' } });
    const res = await send(gw.url, '/api/500');
    expect(res.status).toBe(500);
    expect(res.text).toContain('TypeError');
    const off = await send(gw.url, '/raw/api/500');
    expect(off.status).toBe(500);
  });
});
