import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { rampart } from './index.js';
import { captureLogs } from '../test/helpers/gateway.js';
import { createLogger } from './observability/logger.js';
import { problemOf, send } from '../test/helpers/http.js';

describe('library mode: the engine as a Fastify plugin', () => {
  async function userApp() {
    const logs = captureLogs();
    const app = Fastify();
    await app.register(rampart, {
      logger: createLogger({ level: 'info', destination: 'stdout' }, logs.stream),
      config: {
        defaults: { 'request-id': { header: 'x-trace-id' } },
        routes: [{ name: 'orders', match: { path: '/orders/:id', methods: ['GET'] }, public: true, policies: { 'access-log': { query: 'drop' } } }],
      },
    });
    app.get('/orders/:id', async (request) => ({ id: (request.params as { id: string }).id, via: request.rampart?.route.name }));
    app.get('/health', async () => ({ ok: true }));
    return { app, logs };
  }

  it('runs the configured route policies around the host app own handlers', async () => {
    const { app, logs } = await userApp();
    const res = await app.inject({ method: 'GET', url: '/orders/7?secret=1', headers: { 'x-trace-id': 'abc-1' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: '7', via: 'orders' });
    expect(res.headers['x-trace-id']).toBe('abc-1');
    const line = await logs.waitFor((l) => l.type === 'access');
    expect(line).toMatchObject({ route: 'orders', path: '/orders/7', status: 200, requestId: 'abc-1' });
    await app.close();
  });

  it('applies the defaults to routes the config does not name, and leaves 404s to the app', async () => {
    const { app, logs } = await userApp();
    const health = await app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.headers['x-trace-id']).toEqual(expect.any(String));
    const missing = await app.inject({ method: 'GET', url: '/missing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'Not Found' }); // the app's own 404, not the gateway's
    await logs.waitFor((l) => l.type === 'access' && l.path === '/missing');
    await app.close();
  });

  it('refuses TRACE and dot segments with problem+json before the app sees them', async () => {
    const { app } = await userApp();
    // inject() would resolve the dot segments itself: send raw paths over a real socket.
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const trace = await send(base, '/orders/1', { method: 'TRACE' });
    expect(trace.status).toBe(405);
    expect(problemOf(trace).code).toBe('RMP_METHOD_REFUSED');
    const dots = await send(base, '/orders/%2e%2e/admin');
    expect(dots.status).toBe(400);
    expect(problemOf(dots).code).toBe('RMP_REQUEST_MALFORMED');
    await app.close();
  });

  it('rejects an invalid config at register time', async () => {
    const app = Fastify();
    await expect(app.register(rampart, { config: { defaults: { 'request-idd': {} } } })).rejects.toThrow(/unknown policy 'request-idd' \(did you mean 'request-id'\?\)/);
  });
});
