import { afterEach, expect, it } from 'vitest';
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { closeAfterEach } from '../helpers/gateway.js';
import { problemOf, send } from '../helpers/http.js';
import { redisAvailable } from '../helpers/services.js';

/**
 * Bug: a client that left while a request hook was waiting (here the rate limiter waiting on a
 * slow Redis) had its exchange finished — slots released — before the hooks went on; the hooks
 * then forwarded anyway, and the upstream's `maxInFlight` slot taken then was never given back.
 * Three such clients blocked an upstream with maxInFlight 3 for good (503 for everyone). Now
 * nothing runs or is forwarded for an exchange that is over, and a slot taken after it is given
 * back at once.
 */

const use = closeAfterEach(afterEach);
const redisUp = await redisAvailable();

/** A TCP proxy to the shared Redis that holds Redis's replies for `delayMs`; emits 'delivered'. */
async function slowRedis(delayMs: { value: number }) {
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const redis = connect(6379, '127.0.0.1');
    sockets.add(client).add(redis);
    client.on('data', (d) => redis.write(d));
    redis.on('data', (d) => {
      const ms = delayMs.value;
      const deliver = () => {
        if (client.writable) client.write(d);
        events.emit('delivered');
      };
      if (ms === 0) deliver();
      else setTimeout(deliver, ms);
    });
    client.on('close', () => redis.destroy());
    redis.on('close', () => client.destroy());
    client.on('error', () => {});
    redis.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    events,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

it.skipIf(!redisUp)('aborted-client-leaks-upstream-slot: clients leaving during a slow rate-limit decision do not use up maxInFlight', async () => {
  const delay = { value: 0 };
  const proxy = await slowRedis(delay);
  try {
    const up = await use.upstream();
    const gw = await use.gateway({
      redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: `rampart-test:${process.pid}:${Date.now()}:`, commandTimeout: '2s' },
      defaults: { 'ip-rate-limit': { limit: 1_000_000, store: 'redis' } },
      upstreams: { app: { targets: [{ url: up.url }], maxInFlight: 3 } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
    });
    expect((await send(gw.url, '/api/warm')).status).toBe(200);
    delay.value = 300;
    const { port } = new URL(gw.url);
    const delivered = Promise.all([1, 2, 3].map(() => once(proxy.events, 'delivered')));
    for (let i = 0; i < 3; i++) {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('GET /api/gone HTTP/1.1\r\nHost: a\r\n\r\n');
        setTimeout(() => socket.destroy(), 50); // leaves while the decision waits on Redis
      });
      socket.on('error', () => {});
    }
    // The three decisions come back from Redis after the clients have gone.
    await delivered;
    await new Promise((resolve) => setImmediate(resolve));
    delay.value = 0;
    const after = await send(gw.url, '/api/x');
    expect(after.status, after.status === 503 ? String(problemOf(after).code) : '').toBe(200);
    // Nothing was forwarded for the clients that left.
    expect(up.requests.map((r) => r.url)).toEqual(['/api/warm', '/api/x']);
  } finally {
    proxy.close();
  }
});
