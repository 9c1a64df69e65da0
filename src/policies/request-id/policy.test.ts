import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach, type TestUpstream } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);
let upstream: TestUpstream | undefined;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function setup(policy: Record<string, unknown> | false = {}) {
  upstream = await use.upstream();
  const gateway = await use.gateway({
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    defaults: { 'request-id': policy },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
  return { gateway, upstream };
}

describe('request-id policy', () => {
  it('generates a UUID, echoes it, forwards it and logs it', async () => {
    const { gateway, upstream } = await setup();
    const res = await send(gateway.url, '/api/a');
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(UUID);
    expect(upstream.requests[0]!.headers['x-request-id']).toBe(id);
    const line = await gateway.logs.waitFor((l) => l.type === 'access' && l.requestId === id);
    expect(line.route).toBe('api');
  });

  it('accepts a safe incoming id and replaces an unsafe one, also upstream', async () => {
    const { gateway, upstream } = await setup();
    const safe = await send(gateway.url, '/api/a', { headers: { 'x-request-id': 'trace-abc.123:XYZ' } });
    expect(safe.headers['x-request-id']).toBe('trace-abc.123:XYZ');
    expect(upstream.requests[0]!.headers['x-request-id']).toBe('trace-abc.123:XYZ');
    for (const hostile of ['', 'a b', 'x'.repeat(129), '<script>', 'id\u00e9', '{"a":1}', '-leading']) {
      const res = await send(gateway.url, '/api/a', { headers: { 'x-request-id': hostile } });
      expect(res.headers['x-request-id'], hostile).toMatch(UUID);
      expect(upstream.requests.at(-1)!.headers['x-request-id'], hostile).toBe(res.headers['x-request-id']);
    }
  });

  it('puts the same id in problem bodies, also for requests no route matches', async () => {
    const { gateway } = await setup();
    const res = await send(gateway.url, '/nowhere', { headers: { 'x-request-id': 'abc-123' } });
    expect(res.status).toBe(404);
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(problemOf(res).requestId).toBe('abc-123');
  });

  it('honours a custom header, acceptIncoming: false, echo: false and forward: false', async () => {
    const { gateway, upstream } = await setup({ header: 'x-correlation-id', acceptIncoming: false, echo: false, forward: false });
    const res = await send(gateway.url, '/api/a', { headers: { 'x-correlation-id': 'client-chosen' } });
    expect(res.headers['x-correlation-id']).toBeUndefined();
    // Not managed upstream: the client's header passes through untouched, the gateway adds none.
    expect(upstream.requests[0]!.headers['x-correlation-id']).toBe('client-chosen');
    const line = await gateway.logs.waitFor((l) => l.type === 'access');
    expect(line.requestId).toMatch(UUID);
  });

  it('when off, the problem body still carries a generated request id', async () => {
    const { gateway } = await setup(false);
    const res = await send(gateway.url, '/nowhere');
    expect(res.headers['x-request-id']).toBeUndefined();
    expect(problemOf(res).requestId).toMatch(UUID);
  });
});

describe('request-id on refused requests', () => {
  it('keeps the incoming id on requests refused before routing (TRACE, dot segments)', async () => {
    const { gateway, upstream } = await setup();
    for (const [method, path, status] of [['TRACE', '/api/a', 405], ['GET', '/api/../x', 400]] as const) {
      const res = await send(gateway.url, path, { method, headers: { 'x-request-id': `keep-${status}` } });
      expect(res.status).toBe(status);
      expect(res.headers['x-request-id']).toBe(`keep-${status}`);
      expect(problemOf(res).requestId).toBe(`keep-${status}`);
    }
    expect(upstream.requests).toHaveLength(0);
  });
});
