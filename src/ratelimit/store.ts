import { decide, type Decision, type LimitSpec, type LimitState } from './algorithms.js';

/**
 * Where counters live. A decision is one atomic step: read, decide and write happen together
 * (in-process for memory, in one Lua script for Redis), never read-then-write across awaits.
 */
export interface RateStore {
  readonly kind: 'memory' | 'redis';
  /** Decides for `cost` requests; with `dryRun`, says what would happen without counting. */
  consume(key: string, spec: LimitSpec, cost: number, dryRun: boolean): Decision | Promise<Decision>;
  reset(key: string): void | Promise<void>;
}

export interface MemoryStoreOptions {
  /** Milliseconds since the epoch; injectable so tests can freeze time. */
  now?: () => number;
  /** Most keys kept; past it the oldest are dropped (a flood of distinct keys cannot exhaust memory). */
  maxKeys?: number;
  /** How often expired keys are swept. */
  sweepMs?: number;
}

/** One process's counters. Expired keys are swept periodically and the number of keys is capped. */
export class MemoryStore implements RateStore {
  readonly kind = 'memory' as const;
  readonly #states = new Map<string, LimitState>();
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #timer: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    // About 450 bytes per key (key string, state, Map entry): 100 000 keys ≈ 45 MB.
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#timer = setInterval(() => this.sweep(), options.sweepMs ?? 10_000);
    this.#timer.unref();
  }

  consume(key: string, spec: LimitSpec, cost: number, dryRun: boolean): Decision {
    const now = this.#now();
    let state = this.#states.get(key);
    if (state !== undefined && state.expiresAt <= now) state = undefined;
    const { decision, next } = decide(spec, state, now, cost);
    if (!dryRun && next === state && state !== undefined) {
      // Refused: nothing changes, but the counter is in use (least recently used goes first).
      this.#states.delete(key);
      this.#states.set(key, state);
    } else if (!dryRun && next !== state) {
      if (next === undefined) this.#states.delete(key);
      else {
        // Re-inserted on every write, so the Map's first key is the least recently counted one:
        // past the cap that one goes, never a counter in use.
        this.#states.delete(key);
        this.#states.set(key, next);
        if (this.#states.size > this.#maxKeys) this.#states.delete(this.#states.keys().next().value!);
      }
    }
    return decision;
  }

  reset(key: string): void {
    this.#states.delete(key);
  }

  get size(): number {
    return this.#states.size;
  }

  sweep(): void {
    const now = this.#now();
    for (const [key, state] of this.#states) if (state.expiresAt <= now) this.#states.delete(key);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#states.clear();
  }
}
