import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach, type TestUpstream } from '../../../test/helpers/gateway.js';
import { send } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);
let upstream: TestUpstream | undefined;

async function setup(accessLog: Record<string, unknown> | false = {}) {
  upstream = await use.upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello world');
  });
  const gateway = await use.gateway({
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    defaults: { 'access-log': accessLog },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
  return gateway;
}

describe('access-log policy', () => {
  it('writes one JSON line per request with the documented fields', async () => {
    const gw = await setup();
    const res = await send(gw.url, '/api/items?page=2', { method: 'POST', body: 'abc', headers: { 'content-type': 'text/plain' } });
    const line = await gw.logs.waitFor((l) => l.type === 'access');
    expect(line).toMatchObject({
      level: 'info',
      msg: 'request',
      requestId: res.headers['x-request-id'],
      route: 'api',
      method: 'POST',
      path: '/api/items?page=2',
      status: 200,
      bytesIn: 3,
      clientIp: '127.0.0.1',
      upstream: upstream!.url,
      errorCode: null,
      aborted: false,
    });
    expect(line.latencyMs).toEqual(expect.any(Number));
    expect(line.bytesOut as number).toBeGreaterThan('hello world'.length);
    expect(gw.logs.lines.filter((l) => l.type === 'access')).toHaveLength(1);
  });

  it('redacts secrets in the query and never logs credential headers', async () => {
    const gw = await setup();
    await send(gw.url, '/api/x?page=1&access_token=abc123&%74oken=zzz&API_KEY=k1&password=hunter2', {
      headers: { authorization: 'Bearer abc123', cookie: 'sid=zzz', 'x-api-key': 'k1' },
    });
    const line = await gw.logs.waitFor((l) => l.type === 'access');
    expect(line.path).toBe('/api/x?page=1&access_token=[REDACTED]&%74oken=[REDACTED]&API_KEY=[REDACTED]&password=[REDACTED]');
    const all = JSON.stringify(gw.logs.lines);
    for (const secret of ['abc123', 'zzz', 'k1', 'hunter2']) expect(all).not.toContain(secret);
  });

  it('logs denials with their code and the route as null when nothing matched', async () => {
    const gw = await setup({ query: 'drop' });
    await send(gw.url, '/nope?token=secret');
    const line = await gw.logs.waitFor((l) => l.type === 'access');
    expect(line).toMatchObject({ route: null, path: '/nope', status: 404, errorCode: 'RMP_ROUTE_NOT_FOUND', upstream: null });
  });

  it('can be turned off', async () => {
    const gw = await setup(false);
    await send(gw.url, '/api/x');
    await send(gw.url, '/nope');
    expect(gw.logs.lines.filter((l) => l.type === 'access')).toHaveLength(0);
  });
});
