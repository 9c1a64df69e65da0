import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '../../config/schema.js';
import { parseDuration } from '../../config/units.js';

/** One server of an upstream, with its keep-alive pool and passive health state. */
export class Target {
  readonly origin: string;
  /** Path of the target URL without its trailing slash ('' for none), prepended to forwarded paths. */
  readonly basePath: string;
  /** `host[:port]` of the target URL, sent as Host in `target` mode. */
  readonly hostHeader: string;
  readonly pool: Pool;
  consecutiveFailures = 0;
  downUntil = 0;

  constructor(url: string, options: Pool.Options) {
    const parsed = new URL(url);
    this.origin = parsed.origin;
    this.basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/$/, '');
    this.hostHeader = parsed.host;
    this.pool = new Pool(this.origin, options);
  }
}

/** A named upstream: round-robin over its targets, skipping any that keep failing. */
export class Upstream {
  readonly name: string;
  readonly targets: readonly Target[];
  readonly retries: number;
  /** `maxInFlight` (0: no limit) and the requests in flight now. */
  readonly maxInFlight: number;
  inflight = 0;
  /** `target`, `preserve`, or a literal Host value. */
  readonly hostMode: string;
  readonly #failureThreshold: number;
  readonly #cooldownMs: number;
  readonly #logger: Logger;
  #next = 0;

  constructor(name: string, config: UpstreamConfig, logger: Logger) {
    this.name = name;
    this.retries = config.retries;
    this.maxInFlight = config.maxInFlight;
    this.hostMode = config.host;
    this.#failureThreshold = config.passiveHealth.failures;
    this.#cooldownMs = parseDuration(config.passiveHealth.cooldown);
    this.#logger = logger;
    const options: Pool.Options = {
      connections: config.pool.connections,
      keepAliveTimeout: parseDuration(config.pool.keepAliveTimeout),
      headersTimeout: parseDuration(config.timeouts.headers),
      bodyTimeout: parseDuration(config.timeouts.body),
      connect: { timeout: parseDuration(config.timeouts.connect) },
      pipelining: 1,
    };
    this.targets = config.targets.map((t) => new Target(t.url, options));
  }

  /** Next target in turn that is not cooling down; if all are, the one that recovers first. */
  pick(now: number): Target {
    const targets = this.targets;
    const n = targets.length;
    if (n === 1) return targets[0]!;
    for (let i = 0; i < n; i++) {
      const target = targets[(this.#next + i) % n]!;
      if (target.downUntil <= now) {
        this.#next = (this.#next + i + 1) % n;
        return target;
      }
    }
    let soonest = targets[0]!;
    for (const t of targets) if (t.downUntil < soonest.downUntil) soonest = t;
    return soonest;
  }

  succeeded(target: Target): void {
    if (target.consecutiveFailures !== 0) target.consecutiveFailures = 0;
  }

  /** Counts a connection failure or timeout; past the threshold the target is skipped for the cooldown. */
  failed(target: Target, now: number): void {
    target.consecutiveFailures++;
    if (target.consecutiveFailures >= this.#failureThreshold && this.targets.length > 1) {
      target.downUntil = now + this.#cooldownMs;
      target.consecutiveFailures = 0;
      this.#logger.warn({ upstream: this.name, target: target.origin, cooldownMs: this.#cooldownMs }, 'upstream target failing; skipped for the cooldown');
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.pool.close().catch(() => t.pool.destroy())));
  }

  destroy(): Promise<void> {
    return Promise.all(this.targets.map((t) => t.pool.destroy().catch(() => undefined))).then(() => undefined);
  }
}
