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
  /** The circuit is open until then (0: closed). Past it, one probe request is let through (half-open). */
  downUntil = 0;
  /** When the half-open probe was let through (0: none in flight). */
  probeAt = 0;

  constructor(url: string, options: Pool.Options) {
    const parsed = new URL(url);
    this.origin = parsed.origin;
    this.basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/$/, '');
    this.hostHeader = parsed.host;
    this.pool = new Pool(this.origin, options);
  }
}

/**
 * A named upstream: round-robin over its targets, with a circuit breaker per target. After
 * `passiveHealth.failures` consecutive failures (connection refused or reset, timeouts) a target's
 * circuit opens for `passiveHealth.cooldown`: nothing is sent to it. Then one request is let
 * through (half-open): its success closes the circuit, its failure opens it again. When every
 * target is open the upstream is skipped at once: 503 RMP_UPSTREAM_CIRCUIT_OPEN with Retry-After,
 * instead of waiting on connections that fail.
 */
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

  /**
   * Next target in turn whose circuit is closed, else one whose cooldown is over and that has no
   * probe in flight (it becomes the probe); undefined when every circuit is open.
   */
  pick(now: number): Target | undefined {
    const targets = this.targets;
    const n = targets.length;
    let probe: Target | undefined;
    for (let i = 0; i < n; i++) {
      const index = (this.#next + i) % n;
      const target = targets[index]!;
      if (target.downUntil === 0) {
        this.#next = (index + 1) % n;
        return target;
      }
      // A probe that ended without a verdict (the client went away, an error that says nothing
      // about the target) does not hold the circuit half-open for ever: one more after a cooldown.
      if (probe === undefined && target.downUntil <= now && (target.probeAt === 0 || now - target.probeAt > this.#cooldownMs)) probe = target;
    }
    if (probe !== undefined) probe.probeAt = now;
    return probe;
  }

  /** Seconds until the first circuit of this upstream may let a probe through (at least 1). */
  retryAfter(now: number): number {
    let soonest = Infinity;
    for (const t of this.targets) soonest = Math.min(soonest, t.probeAt !== 0 ? t.probeAt + this.#cooldownMs : t.downUntil);
    return Math.max(1, Math.ceil((soonest - now) / 1000));
  }

  succeeded(target: Target): void {
    if (target.consecutiveFailures !== 0) target.consecutiveFailures = 0;
    if (target.downUntil !== 0) {
      target.downUntil = 0;
      target.probeAt = 0;
      this.#logger.info({ upstream: this.name, target: target.origin }, 'upstream target answered the probe; circuit closed');
    }
  }

  /** Counts a failure (refused, reset, timeout); at the threshold, or when the probe fails, the circuit opens for the cooldown. */
  failed(target: Target, now: number): void {
    const probing = target.downUntil !== 0;
    target.consecutiveFailures++;
    if (probing || target.consecutiveFailures >= this.#failureThreshold) {
      target.downUntil = now + this.#cooldownMs;
      target.probeAt = 0;
      target.consecutiveFailures = 0;
      this.#logger.warn({ upstream: this.name, target: target.origin, cooldownMs: this.#cooldownMs, probe: probing }, 'upstream target failing; circuit open for the cooldown');
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.pool.close().catch(() => t.pool.destroy())));
  }

  destroy(): Promise<void> {
    return Promise.all(this.targets.map((t) => t.pool.destroy().catch(() => undefined))).then(() => undefined);
  }
}
