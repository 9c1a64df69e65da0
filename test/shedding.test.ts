import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';

/**
 * Load shedding: past a route's or an upstream's concurrency limit, and while the process is
 * overloaded, requests get 503 RMP_OVERLOADED at once — never queued behind the slow ones.
 */

const use = closeAfterEach(afterEach);
const UPSTREAM_DELAY_MS = 3000;

/** An upstream that holds every request until released (or UPSTREAM_DELAY_MS). */
async function slowUpstream() {
  const held: (() => void)[] = [];
  const arrived: ((n: number) => void)[] = [];
  let count = 0;
  const up = await use.upstream((_req, res) => {
    count++;
    for (const a of arrived.splice(0)) a(count);
    const timer = setTimeout(() => res.end('{"slow":true}'), UPSTREAM_DELAY_MS);
    held.push(() => (clearTimeout(timer), res.end('{"slow":true}')));
  });
  return {
    up,
    /** Resolves once `n` requests have reached the upstream. */
    reached: (n: number) => new Promise<void>((resolve) => (count >= n ? resolve() : arrived.push(function check(c) { if (c >= n) resolve(); else arrived.push(check); }))),
    releaseAll: () => held.splice(0).forEach((r) => r()),
  };
}

describe('load shedding', () => {
  it('concurrency: with a slow upstream and max 10, the 11th concurrent request gets 503 at once', async () => {
    const slow = await slowUpstream();
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: slow.up.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: { concurrency: { max: 10, retryAfter: '2s' } } }],
    });
    const ten = Array.from({ length: 10 }, (_, i) => send(gw.url, `/api/${i}`));
    await slow.reached(10);
    const started = Date.now();
    const eleventh = await send(gw.url, '/api/11');
    const elapsed = Date.now() - started;
    expect(eleventh.status).toBe(503);
    expect(problemOf(eleventh).code).toBe('RMP_OVERLOADED');
    expect(eleventh.headers['retry-after']).toBe('2');
    // Well before the upstream's 3 s delay (measured: a few ms).
    expect(elapsed).toBeLessThan(UPSTREAM_DELAY_MS / 2);
    expect(slow.up.requests.length).toBeLessThanOrEqual(10);
    slow.releaseAll();
    expect((await Promise.all(ten)).map((r) => r.status)).toEqual(Array(10).fill(200));
    // Slots are given back when the responses are over.
    const after = send(gw.url, '/api/again');
    await slow.reached(11);
    slow.releaseAll();
    expect((await after).status).toBe(200);
  });

  it('upstream maxInFlight: shared by every route of the upstream', async () => {
    const slow = await slowUpstream();
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: slow.up.url }], maxInFlight: 2 } },
      routes: [
        { name: 'a', match: { path: '/a' }, upstream: 'app' },
        { name: 'b', match: { path: '/b' }, upstream: 'app' },
      ],
    });
    const two = [send(gw.url, '/a'), send(gw.url, '/b')];
    await slow.reached(2);
    const third = await send(gw.url, '/a');
    expect(third.status).toBe(503);
    expect(problemOf(third).code).toBe('RMP_OVERLOADED');
    expect(third.headers['retry-after']).toBe('1');
    slow.releaseAll();
    expect((await Promise.all(two)).map((r) => r.status)).toEqual([200, 200]);
  });

  it('event-loop delay: while the loop lags past server.overload.maxEventLoopDelay, requests are shed at once', async () => {
    const up = await use.upstream();
    const gw = await use.gateway({
      server: { overload: { maxEventLoopDelay: '50ms', retryAfter: '3s' } },
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
    });
    expect((await send(gw.url, '/api/x')).status).toBe(200);
    // Block this process's event loop (the gateway runs in it) until the sampler reports the lag.
    let shed: Awaited<ReturnType<typeof send>> | undefined;
    for (let attempt = 0; attempt < 20 && shed === undefined; attempt++) {
      const until = Date.now() + 400;
      while (Date.now() < until) {
        /* busy: the event loop is blocked */
      }
      const res = await send(gw.url, '/api/x');
      if (res.status === 503) shed = res;
    }
    expect(shed?.status).toBe(503);
    expect(problemOf(shed!).code).toBe('RMP_OVERLOADED');
    expect(shed!.headers['retry-after']).toBe('3');
    expect(shed!.headers['x-content-type-options']).toBe('nosniff');
    const forwarded = up.requests.length;
    // Once the loop is idle again, the next samples clear it (bounded wait on the answer, not a sleep).
    let recovered = false;
    for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
      recovered = (await send(gw.url, '/api/x')).status === 200;
      if (!recovered) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(true);
    expect(up.requests.length).toBe(forwarded + 1);
  });
});
