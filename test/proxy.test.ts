import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/gateway.js';
import { problemOf, send, sendRaw } from './helpers/http.js';

let gateway: TestGateway | undefined;
const upstreams: TestUpstream[] = [];

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function upstream(...args: Parameters<typeof startUpstream>): Promise<TestUpstream> {
  const u = await startUpstream(...args);
  upstreams.push(u);
  return u;
}

function oneRoute(target: string, route: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const { upstream: upstreamExtra, ...rest } = extra;
  return {
    upstreams: { app: { targets: [{ url: target }], ...(upstreamExtra as object) } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', ...route }],
    ...rest,
  };
}

describe('forwarding', () => {
  it('forwards method, path, query and body, and strips hop-by-hop headers both ways', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(201, {
        'content-type': 'text/plain',
        connection: 'x-upstream-hop',
        'x-upstream-hop': 'secret',
        'keep-alive': 'timeout=5',
        'set-cookie': ['a=1', 'b=2'],
      });
      res.end('created');
    });
    gateway = await startGateway(oneRoute(up.url));
    const res = await send(gateway.url, '/api/items?x=1&y=%20z', {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'keep-alive, x-client-hop', 'x-client-hop': 'secret', te: 'trailers', 'x-keep': 'yes' },
      body: '{"a":1}',
    });
    expect(res.status).toBe(201);
    expect(res.text).toBe('created');
    expect(res.headers['x-upstream-hop']).toBeUndefined();
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(up.requests).toHaveLength(1);
    const seen = up.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/api/items?x=1&y=%20z');
    expect(seen.body.toString()).toBe('{"a":1}');
    expect(seen.headers['x-keep']).toBe('yes');
    expect(seen.headers['x-client-hop']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers['x-request-id']).toBe(res.headers['x-request-id']);
  });

  it('forwards a chunked request body intact', async () => {
    const up = await upstream();
    gateway = await startGateway(oneRoute(up.url));
    const body = 'x'.repeat(70_000);
    const raw = await sendRaw(
      gateway.url,
      `POST /api/chunked HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(body.length).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(raw.startsWith('HTTP/1.1 200')).toBe(true);
    expect(up.requests[0]!.body.toString()).toBe(body);
    expect(up.requests[0]!.headers['transfer-encoding']).toBe('chunked');
  });

  it('answers HEAD and 204 without a body', async () => {
    const up = await upstream((req, res) => {
      if (req.url === '/api/empty') return res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    gateway = await startGateway(oneRoute(up.url));
    const head = await send(gateway.url, '/api/x', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    const empty = await send(gateway.url, '/api/empty', { method: 'DELETE' });
    expect(empty.status).toBe(204);
    expect(empty.text).toBe('');
  });

  it('sends the target host by default, the client host with `preserve`, or a literal', async () => {
    const up = await upstream();
    for (const [mode, expected] of [
      ['target', `127.0.0.1:${up.port}`],
      ['preserve', 'client.example:1234'],
      ['internal.example', 'internal.example'],
    ] as const) {
      gateway = await startGateway(oneRoute(up.url, {}, { upstream: { host: mode } }));
      await send(gateway.url, '/api/h', { headers: { host: 'client.example:1234' } });
      expect(up.requests.at(-1)!.headers.host).toBe(expected);
      expect(up.requests.at(-1)!.headers['x-forwarded-host']).toBe('client.example:1234');
      await gateway.close();
      gateway = undefined;
    }
  });
});

describe('paths', () => {
  it('strips a prefix and rewrites with the raw, still-encoded segments', async () => {
    const up = await upstream();
    gateway = await startGateway({
      upstreams: { app: { targets: [{ url: `${up.url}/base/` }] } },
      routes: [
        { name: 'strip', match: { path: '/api/v1/*' }, upstream: 'app', stripPrefix: '/api/v1' },
        { name: 'note', match: { path: '/notes/:id' }, upstream: 'app', rewrite: '/internal/notes/:id/view' },
        { name: 'files', match: { path: '/users/:user/files/*' }, upstream: 'app', rewrite: '/store/:user/*' },
      ],
    });
    await send(gateway.url, '/api/v1/things?q=1');
    await send(gateway.url, '/api/v1/');
    await send(gateway.url, '/notes/a%2Fb');
    await send(gateway.url, '/users/u%20x/files/dir/f.txt?download=1');
    // `%7E` is an escaped unreserved character: normalized before routing and forwarding.
    await send(gateway.url, '/notes/%7Euser');
    expect(up.requests.map((r) => r.url)).toEqual([
      '/base/things?q=1',
      '/base/',
      '/base/internal/notes/a%2Fb/view',
      '/base/store/u%20x/dir/f.txt?download=1',
      '/base/internal/notes/~user/view',
    ]);
  });

  it('refuses dot segments, raw or encoded, without calling the upstream', async () => {
    const up = await upstream();
    gateway = await startGateway(oneRoute(up.url));
    for (const path of ['/api/../admin', '/api/%2e%2e/admin', '/api/.%2E/admin', '/api/./x', '/api/x/..', '/api/%zz']) {
      const res = await send(gateway.url, path);
      expect(res.status, path).toBe(400);
      expect(problemOf(res).code, path).toBe('RMP_REQUEST_MALFORMED');
    }
    expect(up.requests).toHaveLength(0);
  });
});

describe('routing', () => {
  it('picks the most specific route for the method, answers 404 and 405 with Allow', async () => {
    const up = await upstream((req, res) => res.end(JSON.stringify({ url: req.url })));
    const routes = [
      { name: 'wild', match: { path: '/a/*', methods: ['GET', 'POST'] }, upstream: 'app', rewrite: '/wild/*' },
      { name: 'param', match: { path: '/a/:id', methods: ['GET'] }, upstream: 'app', rewrite: '/param/:id' },
      { name: 'static', match: { path: '/a/static', methods: ['GET'] }, upstream: 'app', rewrite: '/static' },
      { name: 'hosted', match: { path: '/h', methods: ['GET'], host: 'api.example.com' }, upstream: 'app', rewrite: '/hosted' },
      { name: 'any-host', match: { path: '/h', methods: ['GET'] }, upstream: 'app', rewrite: '/any' },
      { name: 'sub', match: { path: '/s', methods: ['GET'], host: '*.example.org' }, upstream: 'app', rewrite: '/sub' },
    ];
    gateway = await startGateway({ upstreams: { app: { targets: [{ url: up.url }] } }, routes });
    const hit = async (path: string, method = 'GET', host?: string) => {
      const res = await send(gateway!.url, path, { method, headers: host ? { host } : {} });
      return res.status === 200 ? (res.json() as { url: string }).url : res.status;
    };
    expect(await hit('/a/static')).toBe('/static');
    expect(await hit('/a/42')).toBe('/param/42');
    expect(await hit('/a/42/more')).toBe('/wild/42/more');
    expect(await hit('/a/42', 'POST')).toBe('/wild/42');
    expect(await hit('/h', 'GET', 'api.example.com:8080')).toBe('/hosted');
    expect(await hit('/h', 'GET', 'API.EXAMPLE.COM')).toBe('/hosted');
    expect(await hit('/h', 'GET', 'other.example.com')).toBe('/any');
    expect(await hit('/s', 'GET', 'x.example.org')).toBe('/sub');
    expect(await hit('/s', 'GET', 'example.org')).toBe(404);

    const notFound = await send(gateway.url, '/nothing/here');
    expect(notFound.status).toBe(404);
    expect(problemOf(notFound)).toMatchObject({ code: 'RMP_ROUTE_NOT_FOUND', status: 404, instance: '/nothing/here' });
    expect(problemOf(notFound).requestId).toBe(notFound.headers['x-request-id']);

    const wrongMethod = await send(gateway.url, '/a/42', { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, POST');
    expect(problemOf(wrongMethod).code).toBe('RMP_METHOD_NOT_ALLOWED');
    expect(up.requests.some((r) => r.method === 'DELETE')).toBe(false);
  });

  it('refuses TRACE, TRACK and CONNECT everywhere without calling the upstream', async () => {
    const up = await upstream();
    gateway = await startGateway(oneRoute(up.url, { match: { path: '/api/*', methods: ['GET'] } }));
    const trace = await send(gateway.url, '/api/x', { method: 'TRACE' });
    expect(trace.status).toBe(405);
    expect(problemOf(trace).code).toBe('RMP_METHOD_REFUSED');
    const track = await sendRaw(gateway.url, 'TRACK /api/x HTTP/1.1\r\nHost: t\r\n\r\n');
    expect(track).toMatch(/^HTTP\/1\.1 501 /);
    expect(track).toContain('"code":"RMP_METHOD_NOT_IMPLEMENTED"');
    const connect = await sendRaw(gateway.url, 'CONNECT internal:22 HTTP/1.1\r\nHost: internal:22\r\n\r\n');
    expect(connect).toMatch(/^HTTP\/1\.1 405 /);
    expect(connect).toContain('"code":"RMP_METHOD_REFUSED"');
    expect(connect).toContain('application/problem+json');
    expect(up.requests).toHaveLength(0);
  });

  it('refuses absolute-form request targets', async () => {
    const up = await upstream();
    gateway = await startGateway(oneRoute(up.url));
    const raw = await sendRaw(gateway.url, 'GET http://evil.example/api/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toContain('RMP_REQUEST_MALFORMED');
    expect(up.requests).toHaveLength(0);
  });
});

describe('forwarding headers', () => {
  const spoof = {
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.example',
    forwarded: 'for=203.0.113.9',
    'x-real-ip': '203.0.113.9',
  };

  it('does not believe X-Forwarded-* from an untrusted client: upstream and access log see the socket address', async () => {
    const up = await upstream();
    gateway = await startGateway(oneRoute(up.url));
    const res = await send(gateway.url, '/api/who', { headers: { ...spoof, host: 'gw.example' } });
    const seen = up.requests[0]!.headers;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('gw.example');
    expect(seen.forwarded).toBeUndefined();
    expect(seen['x-real-ip']).toBeUndefined();
    const line = await gateway.logs.waitFor((l) => l.type === 'access' && l.requestId === res.headers['x-request-id']);
    expect(line.clientIp).toBe('127.0.0.1');
  });

  it('believes them from a trusted proxy and appends the peer', async () => {
    const up = await upstream();
    gateway = await startGateway(oneRoute(up.url, {}, { server: { trustedProxies: ['127.0.0.1/32'] } }));
    const res = await send(gateway.url, '/api/who', { headers: spoof });
    const seen = up.requests[0]!.headers;
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe('evil.example');
    const line = await gateway.logs.waitFor((l) => l.type === 'access' && l.requestId === res.headers['x-request-id']);
    expect(line.clientIp).toBe('203.0.113.9');
  });
});

describe('upstream failures', () => {
  it('answers 502 RMP_UPSTREAM_UNAVAILABLE when the upstream refuses connections, with no upstream detail', async () => {
    const port = await closedPort();
    gateway = await startGateway(oneRoute(`http://127.0.0.1:${port}`));
    const res = await send(gateway.url, '/api/x');
    expect(res.status).toBe(502);
    const problem = problemOf(res);
    expect(problem).toMatchObject({ code: 'RMP_UPSTREAM_UNAVAILABLE', status: 502 });
    expect(problem.requestId).toBe(res.headers['x-request-id']);
    expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|stack|'app'/);
    expect(res.text).not.toContain(String(port));
    // The cause is in the log, for operators.
    const log = await gateway.logs.waitFor((l) => l.code === 'RMP_UPSTREAM_UNAVAILABLE');
    expect(JSON.stringify(log)).toContain('ECONNREFUSED');
  });

  it('answers 504 RMP_UPSTREAM_TIMEOUT when the upstream is slower than the headers timeout', async () => {
    const up = await upstream((_req, res) => {
      const timer = setTimeout(() => res.end('SECRET upstream text'), 5000);
      res.on('close', () => clearTimeout(timer));
    });
    gateway = await startGateway(oneRoute(up.url, {}, { upstream: { timeouts: { headers: '200ms' } } }));
    const res = await send(gateway.url, '/api/slow');
    expect(res.status).toBe(504);
    expect(problemOf(res)).toMatchObject({ code: 'RMP_UPSTREAM_TIMEOUT', status: 504 });
    expect(problemOf(res).requestId).toEqual(expect.any(String));
    expect(res.text).not.toContain('SECRET');
  });

  it('retries idempotent requests without a body on another target, never a POST', async () => {
    const down = await closedPort();
    const up = await upstream();
    gateway = await startGateway({
      upstreams: { app: { targets: [{ url: `http://127.0.0.1:${down}` }, { url: up.url }], retries: 1, passiveHealth: { failures: 100 } } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
    });
    // Round-robin starts at the down target: the POST is not retried.
    const post = await send(gateway.url, '/api/p', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
    expect(post.status).toBe(502);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(gateway.url, '/api/g')).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(up.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'GET']);
  });

  it('skips a target that keeps failing for the cooldown', async () => {
    const down = await closedPort();
    const up = await upstream();
    gateway = await startGateway({
      upstreams: { app: { targets: [{ url: `http://127.0.0.1:${down}` }, { url: up.url }], retries: 0, passiveHealth: { failures: 1, cooldown: '1h' } } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
    });
    expect((await send(gateway.url, '/api/1')).status).toBe(502);
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(gateway.url, '/api/g')).status);
    // Without the cooldown every other request would go to the down target and fail.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    await gateway.logs.waitFor((l) => l.msg === 'upstream target failing; circuit open for the cooldown');
  });
});

describe('malformed upstream responses', () => {
  it('answers 502 without any of the upstream headers when its response head is invalid', async () => {
    const server = createNetServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nSet-Cookie: sid=1\r\nX-Bad: a\x7fb\r\nContent-Length: 2\r\n\r\nok', 'latin1'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      gateway = await startGateway(oneRoute(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
      const res = await send(gateway.url, '/api/x');
      expect(res.status).toBe(502);
      expect(problemOf(res).code).toBe('RMP_UPSTREAM_UNAVAILABLE');
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['x-bad']).toBeUndefined();
    } finally {
      server.close();
    }
  });
});

describe('upstream body timeout', () => {
  it('cuts the response off when the upstream goes silent mid-body for longer than the body timeout', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('partial'); // then silence
    });
    gateway = await startGateway(oneRoute(up.url, {}, { upstream: { timeouts: { body: '300ms' } } }));
    const outcome = await send(gateway.url, '/api/stall').then(
      (res) => `completed with ${res.status} and ${res.text.length} bytes`,
      (error: NodeJS.ErrnoException) => `failed: ${error.code ?? error.message}`,
    );
    expect(outcome).toMatch(/^failed: (ECONNRESET|ERR_STREAM_PREMATURE_CLOSE|aborted)/);
    const line = await gateway.logs.waitFor((l) => l.type === 'access');
    expect(line).toMatchObject({ status: 200, aborted: true });
  });
});
