import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';

/**
 * Signed webhook delivery for alerts. Each delivery is one JSON body POSTed with
 *
 *   x-rampart-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *   x-rampart-delivery:  <uuid, the same on every attempt, for receivers to de-duplicate>
 *   x-rampart-attempt:   <1, 2, …>
 *
 * Network errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter (a
 * `Retry-After` wins, bounded by the cap); other answers are final. Redirects are not followed.
 * Concurrency and the number of deliveries held (queued, in flight or waiting to retry) are
 * bounded: past the bound a delivery is dropped, counted and logged. Neither the secret nor the
 * body is ever logged (the body holds client addresses and the URL may hold a token: only the
 * target's name is).
 */

export interface WebhookTarget {
  name: string;
  url: string;
  secret: string;
  timeoutMs: number;
  /** Attempts after the first. */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
}

export interface DeliveryResult {
  status: 'sent' | 'failed' | 'dropped';
  attempts: number;
  /** Why it failed: `HTTP 400`, an undici error code, `shutdown`, `queue full`. */
  error?: string;
}

export interface WebhooksOptions {
  logger: Logger;
  userAgent: string;
  /** Deliveries sent at once (default 4). */
  concurrency?: number;
  /** Deliveries held at once, queued, in flight or waiting to retry (default 1000). */
  maxPending?: number;
  now?: () => number;
  random?: () => number;
}

interface Job {
  readonly target: WebhookTarget;
  readonly body: string;
  readonly id: string;
  attempts: number;
  readonly done: (result: DeliveryResult) => void;
}

/** `t=<seconds>,v1=<hex>`: HMAC-SHA256 of `<t>.<body>` with the secret. */
export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does (docs/alerts.md): recompute the HMAC over `<t>.<raw body>`, compare in
 * constant time, and refuse timestamps more than `toleranceSeconds` away (replays).
 */
export function verifySignature(secret: string, header: string | undefined, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  if (header === undefined) return false;
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || v1 === undefined || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(now / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signature(secret, t, body).split('v1=')[1]!, 'hex');
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

export class Webhooks {
  readonly #logger: Logger;
  readonly #userAgent: string;
  readonly #concurrency: number;
  readonly #maxPending: number;
  readonly #now: () => number;
  readonly #random: () => number;
  // Its own pool: closing it at shutdown cannot touch the upstreams', and no redirect interceptor.
  readonly #agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  readonly #abort = new AbortController();
  readonly #queue: Job[] = [];
  readonly #waiting = new Map<NodeJS.Timeout, Job>();
  #active = 0;
  #pending = 0;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Deliveries dropped because `maxPending` were held. */
  dropped = 0;

  constructor(options: WebhooksOptions) {
    this.#logger = options.logger;
    this.#userAgent = options.userAgent;
    this.#concurrency = options.concurrency ?? 4;
    this.#maxPending = options.maxPending ?? 1000;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** Queues one delivery of `body`; `done` is called once with its outcome. */
  send(target: WebhookTarget, body: string, done: (result: DeliveryResult) => void): void {
    if (this.#closed) return done({ status: 'failed', attempts: 0, error: 'shutdown' });
    if (this.#pending >= this.#maxPending) {
      this.dropped++;
      this.#logger.warn({ target: target.name, dropped: this.dropped }, 'alert webhook queue full: notification dropped');
      return done({ status: 'dropped', attempts: 0, error: 'queue full' });
    }
    this.#pending++;
    this.#queue.push({ target, body, id: randomUUID(), attempts: 0, done });
    this.#pump();
  }

  /** Resolves when nothing is queued, in flight or waiting to retry. */
  settled(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Cancels retries and queued deliveries, aborts those in flight, closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return this.settled();
    this.#closed = true;
    for (const [timer, job] of this.#waiting) {
      clearTimeout(timer);
      this.#finish(job, { status: 'failed', attempts: job.attempts, error: 'shutdown' });
    }
    this.#waiting.clear();
    for (const job of this.#queue.splice(0)) this.#finish(job, { status: 'failed', attempts: job.attempts, error: 'shutdown' });
    this.#abort.abort();
    await this.settled();
    await this.#agent.destroy().catch(() => undefined);
  }

  #pump(): void {
    while (this.#active < this.#concurrency && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      this.#active++;
      void this.#attempt(job).finally(() => {
        this.#active--;
        this.#pump();
      });
    }
  }

  async #attempt(job: Job): Promise<void> {
    job.attempts++;
    const { target } = job;
    const timestamp = Math.floor(this.#now() / 1000);
    let retryable: boolean;
    let retryAfterMs: number | undefined;
    let error: string;
    try {
      const res = await request(target.url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': this.#userAgent,
          'x-rampart-signature': signature(target.secret, timestamp, job.body),
          'x-rampart-delivery': job.id,
          'x-rampart-attempt': String(job.attempts),
        },
        body: job.body,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(target.timeoutMs)]),
        headersTimeout: target.timeoutMs,
        bodyTimeout: target.timeoutMs,
      });
      // The answer's body is not needed; reading a little of it lets the connection be reused.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      const status = res.statusCode;
      if (status >= 200 && status < 300) {
        this.#logger.info({ target: target.name, delivery: job.id, attempts: job.attempts, status }, 'alert webhook delivered');
        return this.#finish(job, { status: 'sent', attempts: job.attempts });
      }
      error = `HTTP ${status}`;
      retryable = status === 429 || status >= 500;
      if (retryable) retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.#now());
    } catch (cause) {
      const e = cause as { code?: unknown; name?: string };
      error = typeof e.code === 'string' ? e.code : e.name === 'TimeoutError' ? 'timeout' : (e.name ?? 'error');
      retryable = true;
    }
    if (this.#closed) return this.#finish(job, { status: 'failed', attempts: job.attempts, error: 'shutdown' });
    if (!retryable || job.attempts > target.retries) {
      this.#logger.warn({ target: target.name, delivery: job.id, attempts: job.attempts, error }, 'alert webhook delivery failed');
      return this.#finish(job, { status: 'failed', attempts: job.attempts, error });
    }
    // A `Retry-After` of 0 (or a past date) still waits the first backoff step: no burst of instant retries.
    const delay = retryAfterMs !== undefined ? Math.min(Math.max(retryAfterMs, target.backoffMs), target.maxBackoffMs) : this.#backoff(target, job.attempts);
    this.#logger.debug({ target: target.name, delivery: job.id, attempts: job.attempts, error, retryInMs: Math.round(delay) }, 'alert webhook attempt failed; retrying');
    const timer = setTimeout(() => {
      this.#waiting.delete(timer);
      this.#queue.push(job);
      this.#pump();
    }, delay);
    timer.unref();
    this.#waiting.set(timer, job);
  }

  /** Exponential (base × 2^(n-1)), capped, with "equal jitter": between half and all of it. */
  #backoff(target: WebhookTarget, attempts: number): number {
    const full = Math.min(target.maxBackoffMs, target.backoffMs * 2 ** Math.min(attempts - 1, 30));
    return full / 2 + (this.#random() * full) / 2;
  }

  #finish(job: Job, result: DeliveryResult): void {
    this.#pending--;
    try {
      job.done(result);
    } catch (error) {
      this.#logger.error({ err: error }, 'alert delivery callback failed');
    }
    if (this.#pending === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  if (/^\d{1,10}$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
