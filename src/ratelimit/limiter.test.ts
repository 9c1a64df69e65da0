import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Decision, LimitSpec } from './algorithms.js';
import { MemoryStore, type RateStore } from './store.js';
import { RedisStore } from './redis.js';
import { createLimiter, Limiter } from './limiter.js';
import { Stores } from '../stores/stores.js';
import { createLogger } from '../observability/logger.js';
import { redisAvailable } from '../../test/helpers/services.js';

/**
 * Each algorithm with a frozen clock, on both stores: exactly the specified number is admitted
 * and `remaining`, `resetMs` (the RateLimit `t`) and `retryAfterMs` (Retry-After) are exact. The
 * Redis store runs the same table through its Lua script, with the time fixed instead of TIME.
 */

const T0 = 1_800_000_000_000; // a multiple of every window below: windows start here

interface Clocked {
  store: RateStore;
  set(now: number): void;
}

function memory(): Clocked {
  let now = T0;
  return { store: new MemoryStore({ now: () => now }), set: (n) => (now = n) };
}

let client: Redis | undefined;
const redisUp = await redisAvailable();

function redis(): Clocked {
  const store = new RedisStore(client!, `rampart-test:${randomUUID()}:`);
  store.fixedNow = T0;
  return { store, set: (n) => (store.fixedNow = n) };
}

beforeAll(() => {
  if (redisUp) client = new Redis('redis://127.0.0.1:6379', { lazyConnect: false });
});
afterAll(async () => {
  await client?.quit();
});

async function take(c: Clocked, spec: LimitSpec, n: number, key = 'k'): Promise<Decision[]> {
  const out: Decision[] = [];
  for (let i = 0; i < n; i++) out.push(await c.store.consume(key, spec, 1, false));
  return out;
}

const stores: [string, () => Clocked, boolean][] = [
  ['memory', memory, true],
  ['redis', redis, redisUp],
];

for (const [name, make, available] of stores) {
  describe.skipIf(!available)(`${name} store, frozen clock`, () => {
    it('gcra: admits the burst at once, then one per interval, with exact remaining, reset and retry', async () => {
      const c = make();
      const spec: LimitSpec = { algorithm: 'gcra', limit: 10, windowMs: 10_000, burst: 10 };
      const first = await take(c, spec, 11);
      expect(first.map((d) => d.allowed)).toEqual([...Array(10).fill(true), false]);
      expect(first.slice(0, 10).map((d) => d.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect(first.slice(0, 10).map((d) => d.resetMs)).toEqual([1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000]);
      expect(first[10]).toEqual({ allowed: false, remaining: 0, resetMs: 10_000, retryAfterMs: 1000 });
      c.set(T0 + 999);
      expect((await take(c, spec, 1))[0]).toMatchObject({ allowed: false, retryAfterMs: 1 });
      c.set(T0 + 1000);
      expect(await take(c, spec, 2)).toEqual([
        { allowed: true, remaining: 0, resetMs: 10_000, retryAfterMs: 0 },
        { allowed: false, remaining: 0, resetMs: 10_000, retryAfterMs: 1000 },
      ]);
      // A smaller burst: 10 per 10 s on average, at most 2 at once.
      const small = make();
      const burst2: LimitSpec = { algorithm: 'gcra', limit: 10, windowMs: 10_000, burst: 2 };
      expect((await take(small, burst2, 3, 'b')).map((d) => [d.allowed, d.retryAfterMs])).toEqual([
        [true, 0],
        [true, 0],
        [false, 1000],
      ]);
    });

    it('fixed window: exactly the limit per calendar window; Retry-After and t are the time to its end', async () => {
      const c = make();
      const spec: LimitSpec = { algorithm: 'fixed-window', limit: 5, windowMs: 10_000, burst: 5 };
      c.set(T0 + 3000);
      const d = await take(c, spec, 6);
      expect(d.map((x) => x.allowed)).toEqual([true, true, true, true, true, false]);
      expect(d.map((x) => x.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
      expect(d[5]).toEqual({ allowed: false, remaining: 0, resetMs: 7000, retryAfterMs: 7000 });
      c.set(T0 + 9999);
      expect((await take(c, spec, 1))[0]).toMatchObject({ allowed: false, retryAfterMs: 1 });
      c.set(T0 + 10_000);
      expect((await take(c, spec, 6)).filter((x) => x.allowed)).toHaveLength(5);
    });

    it('sliding window: the limit in the window, then the previous window weighted by its overlap', async () => {
      const c = make();
      const spec: LimitSpec = { algorithm: 'sliding-window', limit: 5, windowMs: 10_000, burst: 5 };
      const d = await take(c, spec, 6);
      expect(d.map((x) => x.allowed)).toEqual([true, true, true, true, true, false]);
      expect(d.map((x) => x.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
      // 5 in this window: in the next one, 5 × (1 − elapsed/10 s) + 1 ≤ 5 from 2 s in.
      expect(d[5]).toEqual({ allowed: false, remaining: 0, resetMs: 20_000, retryAfterMs: 12_000 });
      c.set(T0 + 11_999);
      expect((await take(c, spec, 1))[0]!.allowed).toBe(false);
      c.set(T0 + 12_000);
      expect((await take(c, spec, 2)).map((x) => x.allowed)).toEqual([true, false]);
      // Two windows later nothing is left of it.
      c.set(T0 + 30_000);
      expect((await take(c, spec, 6)).filter((x) => x.allowed)).toHaveLength(5);
    });

    it('keys are counted apart; a dry run does not count; reset forgets', async () => {
      const c = make();
      const spec: LimitSpec = { algorithm: 'fixed-window', limit: 2, windowMs: 10_000, burst: 2 };
      await take(c, spec, 2, 'a');
      expect((await take(c, spec, 1, 'a'))[0]!.allowed).toBe(false);
      expect((await take(c, spec, 1, 'b'))[0]!.allowed).toBe(true);
      expect((await c.store.consume('b', spec, 1, true)).allowed).toBe(true);
      expect((await c.store.consume('b', spec, 1, true)).allowed).toBe(true);
      expect((await take(c, spec, 2, 'b')).map((x) => x.allowed)).toEqual([true, false]);
      await c.store.reset('a');
      expect((await take(c, spec, 1, 'a'))[0]!.allowed).toBe(true);
    });
  });
}

describe('memory store', () => {
  it('memory-cap-evicts-active-counters: past maxKeys the least recently counted key goes, never one in use', () => {
    let now = T0;
    const store = new MemoryStore({ now: () => now, maxKeys: 3 });
    const spec: LimitSpec = { algorithm: 'fixed-window', limit: 1, windowMs: 10_000, burst: 1 };
    store.consume('victim', spec, 1, false);
    for (const k of ['a', 'b']) store.consume(k, spec, 1, false);
    // The refused victim keeps trying: its counter stays the most recently used.
    expect(store.consume('victim', spec, 1, false).allowed).toBe(false);
    for (const k of ['c', 'd', 'e']) {
      store.consume(k, spec, 1, false);
      expect(store.consume('victim', spec, 1, false).allowed).toBe(false);
    }
    expect(store.size).toBe(3);
    expect(store.consume('a', spec, 1, false).allowed).toBe(true); // 'a' was dropped
    now += 20_000;
    store.sweep();
    expect(store.size).toBe(0);
    store.close();
  });
});

describe.skipIf(!redisUp)('redis store keys', () => {
  it('uses a hash tag per counter and sets an expiry on every key', async () => {
    const prefix = `rampart-test:${randomUUID()}:`;
    const store = new RedisStore(client!, prefix);
    const spec: LimitSpec = { algorithm: 'gcra', limit: 10, windowMs: 60_000, burst: 10 };
    await store.consume('ip|ip=10.0.0.1', spec, 1, false);
    const key = store.redisKey('ip|ip=10.0.0.1');
    expect(key).toBe(`${prefix}rl:{ip|ip=10.0.0.1}`);
    const ttl = await client!.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(6000);
  });
});


describe('Limiter (the engine API the identity service will use)', () => {
  const logger = createLogger({ level: 'silent', destination: 'stderr' });

  /** A store that fails like an unreachable Redis until `up` is set. */
  function flakyStore(inner: MemoryStore) {
    const state = { up: true, calls: 0 };
    const store: RateStore = {
      kind: 'redis',
      consume(key, spec, cost, dryRun) {
        state.calls++;
        return state.up ? Promise.resolve(inner.consume(key, spec, cost, dryRun)) : Promise.reject(new Error("Stream isn't writeable"));
      },
      reset: (key) => inner.reset(key),
    };
    return { store, state };
  }

  it('consume / check / reset by key', async () => {
    const stores = new Stores(logger, { connect: false });
    const limiter = createLimiter({ name: 'login-ip', algorithm: 'fixed-window', limit: 2, window: '1m', store: 'memory', onStoreFailure: 'open' }, { stores, redis: undefined, logger });
    expect((await limiter.check('10.0.0.1')).allowed).toBe(true);
    expect((await limiter.consume('10.0.0.1')).remaining).toBe(1);
    expect((await limiter.consume('10.0.0.1')).remaining).toBe(0);
    expect((await limiter.check('10.0.0.1')).allowed).toBe(false);
    expect((await limiter.consume('10.0.0.2')).allowed).toBe(true);
    await limiter.reset('10.0.0.1');
    expect((await limiter.consume('10.0.0.1')).allowed).toBe(true);
    await stores.close();
  });

  it('fails open onto the local counters, fails closed with 503 RMP_RATE_LIMIT_UNAVAILABLE, and goes back to the store after the break', async () => {
    const shared = new MemoryStore();
    const fallback = new MemoryStore();
    const spec: LimitSpec = { algorithm: 'fixed-window', limit: 2, windowMs: 60_000, burst: 2 };
    const open = flakyStore(shared);
    const closed = flakyStore(shared);
    const openLimiter = new Limiter({ name: 'o', spec, store: open.store, fallback, onStoreFailure: 'open', logger });
    const closedLimiter = new Limiter({ name: 'c', spec, store: closed.store, fallback, onStoreFailure: 'closed', logger });
    open.state.up = false;
    closed.state.up = false;
    // Open: counted locally, so the limit still holds in this process.
    const decisions: boolean[] = [];
    for (let i = 0; i < 3; i++) decisions.push((await openLimiter.consume('k')).allowed);
    expect(decisions).toEqual([true, true, false]);
    expect(openLimiter.storeFailures).toBe(3);
    // The store was tried once; during the 1 s break it is not tried again.
    expect(open.state.calls).toBe(1);
    // Throws at once during the break, rejects when the store itself failed: callers await either way.
    await expect((async () => closedLimiter.consume('k'))()).rejects.toMatchObject({ code: 'RMP_RATE_LIMIT_UNAVAILABLE', status: 503, headers: { 'retry-after': '1' } });
    await expect((async () => closedLimiter.consume('k'))()).rejects.toMatchObject({ code: 'RMP_RATE_LIMIT_UNAVAILABLE' });
    expect(closed.state.calls).toBe(1);
    closed.state.up = true;
    open.state.up = true;
    // After the break the store is used again, with no restart.
    const deadline = Date.now() + 5000;
    let decision: Decision | undefined;
    while (Date.now() < deadline) {
      try {
        decision = await closedLimiter.consume('k');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(decision?.allowed).toBe(true);
    expect(closed.state.calls).toBe(2);
    shared.close();
    fallback.close();
  });
});

describe('gcra arithmetic', () => {
  it('gcra-float-burst-short: a burst of any size is admitted whole at one instant, at real epoch times', () => {
    const short: string[] = [];
    for (const windowMs of [1000, 1001, 3000, 7000, 60_000, 3_600_000, 86_400_000]) {
      for (let limit = 1; limit <= 200; limit++) {
        for (const now of [1_700_000_000_000, 1_753_000_000_123, 1_799_999_999_999]) {
          const store = new MemoryStore({ now: () => now });
          const spec: LimitSpec = { algorithm: 'gcra', limit, windowMs, burst: limit };
          let admitted = 0;
          for (let i = 0; i < limit + 1; i++) if (store.consume('k', spec, 1, false).allowed) admitted++;
          store.close();
          if (admitted !== limit) short.push(`${limit}/${windowMs} ms at ${now}: ${admitted}`);
        }
      }
    }
    expect(short).toEqual([]);
  });

  it('refuses limits too fine to count exactly', () => {
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    const stores = new Stores(logger, { connect: false });
    expect(() => createLimiter({ name: 'x', algorithm: 'gcra', limit: 200_000, window: '1s', store: 'memory', onStoreFailure: 'open' }, { stores, redis: undefined, logger })).toThrow(
      "limit 'x': at most 100000 requests per 1s can be counted exactly",
    );
    void stores.close();
  });
});
