// Regression: a response cut off by the client never reached Fastify's onResponse hook, so the
// request stayed counted in flight (shutdown and reload waited for the drain deadline) and was
// missing from the access log; the upstream call was not cancelled either.
import { request } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';

const use = closeAfterEach(afterEach);

it('client-abort-leaks-inflight: an abandoned request is logged, released and cancelled upstream', async () => {
  let upstreamSawClose!: () => void;
  const upstreamClosed = new Promise<void>((resolve) => (upstreamSawClose = resolve));
  let arrived!: () => void;
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  const up = await use.upstream((_req, res) => {
    arrived();
    res.on('close', () => upstreamSawClose()); // never answered: only the gateway's abort ends it
  });
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });

  const url = new URL(gw.url);
  const req = request({ host: url.hostname, port: url.port, path: '/api/hang', agent: false });
  req.on('error', () => undefined);
  req.end();
  await requestArrived;
  expect(gw.runtime.ref.current.inflight).toBe(1);
  req.destroy();

  const line = await gw.logs.waitFor((l) => l.type === 'access');
  expect(line).toMatchObject({ route: 'api', path: '/api/hang', aborted: true });
  await upstreamClosed;
  expect(gw.runtime.ref.current.inflight).toBe(0);
});
