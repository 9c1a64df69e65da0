/**
 * The three algorithms as pure functions over a small state record, so the memory store and the
 * tests share one implementation; `redis.lua` is the same arithmetic, run atomically in Redis.
 * Times are milliseconds; `now` comes from the caller (the store's clock, or Redis `TIME`).
 */

export type Algorithm = 'gcra' | 'sliding-window' | 'fixed-window';

/**
 * How early (in ms) GCRA may admit a request. Times near 1.8e12 ms carry a rounding error of up to
 * half a unit in the last place (~1.2e-4 ms) per addition, and a burst adds `burst` intervals:
 * without a slack a burst of 7 per second admitted 6. The slack covers that bound, in
 * microseconds for usual bursts, and never reaches half an interval (so never one request more).
 * redis.ts computes the same.
 */
export function gcraSlack(now: number, interval: number, burst: number): number {
  return Math.min(interval / 2, now * 2.3e-16 * (burst + 2));
}

/** The smallest emission interval (window / limit) the stores can count exactly. */
export const MIN_INTERVAL_MS = 0.01;

export interface LimitSpec {
  readonly algorithm: Algorithm;
  /** Requests per window (q). */
  readonly limit: number;
  readonly windowMs: number;
  /** GCRA only: how many may arrive at once (default `limit`). */
  readonly burst: number;
}

export interface Decision {
  allowed: boolean;
  /** Requests still allowed right now (r). */
  remaining: number;
  /** Milliseconds until the quota is whole again (t). */
  resetMs: number;
  /** Milliseconds until this request would be allowed (0 when allowed). */
  retryAfterMs: number;
}

/** gcra: `a` = theoretical arrival time. windows: `a` = window index, `b` = current count, `c` = previous count. */
export interface LimitState {
  a: number;
  b: number;
  c: number;
  /** When the state means nothing any more (an empty state is equivalent). */
  expiresAt: number;
}

export function decide(spec: LimitSpec, state: LimitState | undefined, now: number, cost: number): { decision: Decision; next: LimitState | undefined } {
  switch (spec.algorithm) {
    case 'gcra':
      return gcra(spec, state, now, cost);
    case 'fixed-window':
      return fixedWindow(spec, state, now, cost);
    case 'sliding-window':
      return slidingWindow(spec, state, now, cost);
  }
}

/**
 * Generic cell rate algorithm: one request per `window / limit` on average, up to `burst` at
 * once. Only the theoretical arrival time is kept.
 */
function gcra(spec: LimitSpec, state: LimitState | undefined, now: number, cost: number) {
  const interval = spec.windowMs / spec.limit;
  const tolerance = interval * spec.burst;
  const tat = state === undefined ? now : Math.max(state.a, now);
  const newTat = tat + interval * cost;
  const allowAt = newTat - tolerance - gcraSlack(now, interval, spec.burst);
  if (now < allowAt) {
    return {
      decision: { allowed: false, remaining: Math.max(0, Math.floor((now + tolerance - tat) / interval)), resetMs: Math.ceil(tat - now), retryAfterMs: Math.ceil(allowAt - now) },
      next: state,
    };
  }
  return {
    decision: { allowed: true, remaining: Math.max(0, Math.floor((now + tolerance - newTat) / interval)), resetMs: Math.ceil(newTat - now), retryAfterMs: 0 },
    next: { a: newTat, b: 0, c: 0, expiresAt: Math.ceil(newTat) },
  };
}

/** At most `limit` per calendar window of `window` (windows start at multiples of it). */
function fixedWindow(spec: LimitSpec, state: LimitState | undefined, now: number, cost: number) {
  const index = Math.floor(now / spec.windowMs);
  const end = (index + 1) * spec.windowMs;
  const count = state !== undefined && state.a === index ? state.b : 0;
  if (count + cost > spec.limit) {
    return { decision: { allowed: false, remaining: Math.max(0, spec.limit - count), resetMs: end - now, retryAfterMs: end - now }, next: state };
  }
  const after = count + cost;
  return { decision: { allowed: true, remaining: spec.limit - after, resetMs: end - now, retryAfterMs: 0 }, next: { a: index, b: after, c: 0, expiresAt: end } };
}

/**
 * Sliding window counter: the previous window's count, weighted by how much of it still overlaps
 * the last `window`, plus the current window's count. Two numbers per key; exact within a window,
 * an even-spread estimate across the boundary.
 */
function slidingWindow(spec: LimitSpec, state: LimitState | undefined, now: number, cost: number) {
  const w = spec.windowMs;
  const index = Math.floor(now / w);
  const start = index * w;
  let current = 0;
  let previous = 0;
  if (state !== undefined && state.a === index) {
    current = state.b;
    previous = state.c;
  } else if (state !== undefined && state.a === index - 1) {
    previous = state.b;
  }
  const elapsed = now - start;
  const estimate = (previous * (w - elapsed)) / w + current;
  if (estimate + cost > spec.limit) {
    let retryAt: number;
    if (cost > spec.limit) retryAt = start + 2 * w;
    else if (current + cost <= spec.limit) retryAt = start + Math.ceil(w * (1 - (spec.limit - current - cost) / previous));
    else retryAt = start + w + Math.ceil(w * (1 - (spec.limit - cost) / current));
    return {
      decision: { allowed: false, remaining: Math.max(0, Math.floor(spec.limit - estimate)), resetMs: start + (current > 0 ? 2 * w : w) - now, retryAfterMs: Math.max(1, retryAt - now) },
      next: state,
    };
  }
  const after = current + cost;
  return {
    decision: { allowed: true, remaining: Math.max(0, Math.floor(spec.limit - estimate - cost)), resetMs: start + 2 * w - now, retryAfterMs: 0 },
    next: { a: index, b: after, c: previous, expiresAt: start + 2 * w },
  };
}
