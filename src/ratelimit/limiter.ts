import type { Logger } from 'pino';
import { RampartError } from '../errors/problem.js';
import { MIN_INTERVAL_MS, type Decision, type LimitSpec } from './algorithms.js';
import type { MemoryStore, RateStore } from './store.js';
import { parseDuration } from '../config/units.js';
import type { RedisSettings, Stores } from '../stores/stores.js';

export type FailureMode = 'open' | 'closed';

export interface LimiterOptions {
  /** Names the counter: limiters with the same name share counts for the same key. */
  name: string;
  /** What logs and messages call it (default: `name`). */
  label?: string;
  spec: LimitSpec;
  store: RateStore;
  /** Local counters used while `store` fails, in `open` mode. */
  fallback: MemoryStore;
  onStoreFailure: FailureMode;
  logger: Logger;
}

/** How long a failed store is left alone before it is tried again (requests meanwhile go to the failure mode at once). */
const BREAK_MS = 1000;
/** At most one log line per limiter per this interval while its store fails. */
const LOG_EVERY_MS = 30_000;

/**
 * The rate-limit engine: consume, check or reset by key. The `rate-limit` policies use it, and so
 * will the identity service for brute-force limits. When the store (Redis) fails, `open` counts in
 * this process instead (a limit per node rather than none), `closed` refuses with 503; either way
 * the store is tried again a second later, so recovery needs no restart.
 */
export class Limiter {
  readonly name: string;
  readonly label: string;
  readonly spec: LimitSpec;
  /** Decisions made on the fallback or refused because the store failed (a metric for issue 9). */
  storeFailures = 0;
  readonly #store: RateStore;
  readonly #fallback: MemoryStore;
  readonly #mode: FailureMode;
  readonly #logger: Logger;
  #brokenUntil = 0;
  #loggedAt = 0;

  constructor(options: LimiterOptions) {
    this.name = options.name;
    this.label = options.label ?? options.name;
    this.spec = options.spec;
    this.#store = options.store;
    this.#fallback = options.fallback;
    this.#mode = options.onStoreFailure;
    this.#logger = options.logger;
  }

  /**
   * Counts `cost` requests for `key` and says whether they are allowed: synchronously on the
   * memory store, as a promise on Redis. With `onStoreFailure: closed` and the store failing, it
   * throws (or rejects with) RampartError RMP_RATE_LIMIT_UNAVAILABLE.
   */
  consume(key: string, cost = 1): Decision | Promise<Decision> {
    return this.#run(key, cost, false);
  }

  /** What `consume` would decide, without counting. */
  check(key: string, cost = 1): Decision | Promise<Decision> {
    return this.#run(key, cost, true);
  }

  async reset(key: string): Promise<void> {
    const full = this.#key(key);
    this.#fallback.reset(full);
    if (this.#store !== this.#fallback) await this.#store.reset(full);
  }

  #key(key: string): string {
    return `${this.name}|${key}`;
  }

  #run(key: string, cost: number, dryRun: boolean): Decision | Promise<Decision> {
    const full = this.#key(key);
    if (this.#store === this.#fallback) return this.#fallback.consume(full, this.spec, cost, dryRun);
    if (Date.now() < this.#brokenUntil) return this.#failed(full, cost, dryRun, undefined);
    let result: Decision | Promise<Decision>;
    try {
      result = this.#store.consume(full, this.spec, cost, dryRun);
    } catch (error) {
      return this.#failed(full, cost, dryRun, error);
    }
    if (!(result instanceof Promise)) return result;
    return result.catch((error: unknown) => this.#failed(full, cost, dryRun, error));
  }

  #failed(full: string, cost: number, dryRun: boolean, error: unknown): Decision {
    const now = Date.now();
    if (error !== undefined) this.#brokenUntil = now + BREAK_MS;
    this.storeFailures++;
    if (now - this.#loggedAt >= LOG_EVERY_MS) {
      this.#loggedAt = now;
      this.#logger.warn(
        { limit: this.label, store: this.#store.kind, mode: this.#mode, err: error instanceof Error ? error.message : undefined, failuresSoFar: this.storeFailures },
        this.#mode === 'open' ? 'rate-limit store failed: counting in this process until it is back' : 'rate-limit store failed: refusing requests (onStoreFailure: closed) until it is back',
      );
    }
    if (this.#mode === 'closed') {
      throw new RampartError('RMP_RATE_LIMIT_UNAVAILABLE', { detail: 'The rate limiter cannot decide right now.', headers: { 'retry-after': '1' } });
    }
    return this.#fallback.consume(full, this.spec, cost, dryRun);
  }
}

export interface LimitDefinition {
  name: string;
  /** What logs and messages call it (default: `name`). */
  label?: string;
  algorithm: LimitSpec['algorithm'];
  limit: number;
  /** A duration such as `1m`. */
  window: string;
  burst?: number | undefined;
  store: 'auto' | 'memory' | 'redis';
  onStoreFailure: FailureMode;
}

/**
 * A limiter from its definition, on the process's stores: what the policies use, and what the
 * identity service will use for per-IP and per-account brute-force limits (shared across nodes
 * when Redis is configured). Throws an Error with a readable message for a definition it cannot apply.
 */
export function createLimiter(definition: LimitDefinition, deps: { stores: Stores; redis: RedisSettings | undefined; logger: Logger }): Limiter {
  const name = definition.label ?? definition.name;
  if (definition.burst !== undefined && definition.algorithm !== 'gcra') throw new Error(`limit '${name}': 'burst' applies to the gcra algorithm only`);
  const windowMs = parseDuration(definition.window);
  if (windowMs < 1000) throw new Error(`limit '${name}': the window must be at least 1s`);
  if (windowMs / definition.limit < MIN_INTERVAL_MS) throw new Error(`limit '${name}': at most ${windowMs / MIN_INTERVAL_MS} requests per ${definition.window} can be counted exactly`);
  if (definition.store === 'redis' && deps.redis === undefined) throw new Error(`limit '${name}': store 'redis' needs the top-level 'redis' settings`);
  const useRedis = definition.store === 'redis' || (definition.store === 'auto' && deps.redis !== undefined);
  return new Limiter({
    name: definition.name,
    label: name,
    spec: { algorithm: definition.algorithm, limit: definition.limit, windowMs, burst: definition.burst ?? definition.limit },
    store: useRedis ? deps.stores.redis(deps.redis!) : deps.stores.memory,
    fallback: deps.stores.memory,
    onStoreFailure: definition.onStoreFailure,
    logger: deps.logger,
  });
}
