import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FastifyReply } from 'fastify';
import type { RequestContext } from '../gateway/context.js';
import type { EmittedEvent, Events } from './events.js';
import { errorCodes } from '../errors/codes.js';
import { Traffic } from './traffic.js';

/**
 * Prometheus metrics of one gateway process (`/metrics` on the admin listener), kept across
 * reloads. Every label is bounded: route names (from the config; `*` for requests no route
 * matched), the HTTP methods the gateway knows, status classes, error codes and event types from
 * Rampart's own tables — never a raw path, a header or any other client value.
 */

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY']);
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** Each code's area (`RMP_<AREA>_…`), worked out once from the one table of codes. */
const AREAS: ReadonlyMap<string, string> = new Map(Object.keys(errorCodes).map((code) => [code, code.split('_')[1] ?? 'OTHER']));
/** Who refused, when no request hook did: the upstream's answer (refused or failed), or the gateway before any policy. */
const UNATTRIBUTED: ReadonlyMap<string, string> = new Map(Object.keys(errorCodes).map((code) => [code, /^RMP_(UPSTREAM|RESPONSE)_/.test(code) ? 'upstream' : 'gateway']));
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  /** Per-second figures for the console, the live stream and ratio alerts. */
  readonly traffic = new Traffic();
  readonly #requests: Counter<'route' | 'method' | 'status_class'>;
  readonly #duration: Histogram<'route'>;
  readonly #upstreamDuration: Histogram<'route' | 'upstream'>;
  readonly #denials: Counter<'route' | 'policy' | 'code' | 'area'>;
  readonly #upstreamErrors: Counter<'route' | 'upstream' | 'kind'>;
  readonly #events: Counter<'type' | 'level'>;
  readonly #rateLimited: Counter<'route' | 'limit'>;
  readonly #authFailures: Counter<'route' | 'policy'>;
  readonly #reloads: Counter<'result'>;
  readonly #configVersion: Gauge;
  /** Whether each shared store answers, read at scrape time (undefined: not in use, no series). */
  readonly #stores = new Map<'redis' | 'database', () => boolean | undefined>();
  /** Set in a worker process: the figures of every worker, not only this one's. */
  #aggregate: (() => Promise<{ contentType: string; text: string }>) | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#requests = new Counter({ name: 'rampart_requests_total', help: 'Requests answered, by route, method and status class.', labelNames: ['route', 'method', 'status_class'], registers });
    this.#duration = new Histogram({ name: 'rampart_request_duration_seconds', help: 'Time from the request arriving to its response finishing, by route.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.#upstreamDuration = new Histogram({ name: 'rampart_upstream_duration_seconds', help: 'Time from sending a request upstream to its response headers, by route and upstream.', labelNames: ['route', 'upstream'], buckets: LATENCY_BUCKETS, registers });
    this.#denials = new Counter({ name: 'rampart_denials_total', help: 'Requests the gateway answered with a problem, by route, the policy that refused it (`upstream` for an upstream answer refused or failed, `gateway` for refusals before any policy: no route, malformed), error code and its area (AUTH, AUTHZ, RATE, VALIDATION, …).', labelNames: ['route', 'policy', 'code', 'area'], registers });
    this.#upstreamErrors = new Counter({ name: 'rampart_upstream_errors_total', help: 'Upstream failures: timeout, unavailable (refused, reset), circuit_open (not tried: its circuit breaker is open), server_error (an upstream 5xx).', labelNames: ['route', 'upstream', 'kind'], registers });
    this.#events = new Counter({ name: 'rampart_security_events_total', help: 'Security events emitted, by type (the OWASP vocabulary: authn_login_fail, authz_fail, sys_config_reload, …) and level.', labelNames: ['type', 'level'], registers });
    this.#rateLimited = new Counter({ name: 'rampart_rate_limited_total', help: 'Requests refused with 429 by a rate limit, by route and the limit\'s configured name (`ip` for the per-IP limit, `identity-…` for the identity service\'s own).', labelNames: ['route', 'limit'], registers });
    this.#authFailures = new Counter({ name: 'rampart_auth_failures_total', help: 'Requests refused with 401 by an authentication policy (missing, malformed, invalid, expired or revoked credentials), by route and policy (jwt, api-key, introspection).', labelNames: ['route', 'policy'], registers });
    this.#reloads = new Counter({ name: 'rampart_config_reloads_total', help: 'Config reloads, by result: ok (swapped in) or rejected (the previous config keeps serving).', labelNames: ['result'], registers });
    this.#reloads.inc({ result: 'ok' }, 0);
    this.#reloads.inc({ result: 'rejected' }, 0);
    this.#configVersion = new Gauge({ name: 'rampart_config_version', help: 'Version of the config serving: the number `sys_startup` and `sys_config_reload` events carry, one more with every accepted reload.', registers });
    const stores = this.#stores;
    new Gauge({
      name: 'rampart_store_up',
      help: 'Whether a shared store answers (1) or not (0): redis (the connection is ready), database (a `select 1` every 5 s answered). Only stores in use have a series.',
      labelNames: ['store'],
      registers,
      collect() {
        this.reset();
        for (const [store, up] of stores) {
          const value = up();
          if (value !== undefined) this.set({ store }, value ? 1 : 0);
        }
      },
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Counts every event of `events` (its `type` comes from Rampart's code, never from a request);
   * config reloads and the config version are read from the runtime's own events.
   */
  watch(events: Events): () => void {
    return events.addSink((event: EmittedEvent) => {
      this.#events.inc({ type: event.type, level: event.level });
      if (event.type === 'sys_config_reload') this.#reloads.inc({ result: 'ok' });
      else if (event.type === 'sys_config_reload_fail') this.#reloads.inc({ result: 'rejected' });
      const version = event.data?.configVersion;
      if ((event.type === 'sys_config_reload' || event.type === 'sys_startup') && typeof version === 'number') this.#configVersion.set(version);
    });
  }

  /**
   * The audit table's buffer: `rampart_audit_pending` (events held while the database is away) and
   * `rampart_audit_events_total{result}` — written, dropped (the buffer was full), rejected (the
   * database refused the row; in the log only). Read at scrape time.
   */
  watchAudit(audit: { readonly pending: number; readonly written: number; readonly dropped: number; readonly rejected: number }): void {
    const registers = [this.registry];
    new Gauge({ name: 'rampart_audit_pending', help: 'Security events waiting to be written to the audit table (held in memory, bounded, while the database is away).', registers, collect() { this.set(audit.pending); } });
    new Counter({
      name: 'rampart_audit_events_total',
      help: 'Security events for the audit table, by result: written, dropped (the bounded buffer was full while the database was away), rejected (the database refused the row; in the log only).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'written' }, audit.written);
        this.inc({ result: 'dropped' }, audit.dropped);
        this.inc({ result: 'rejected' }, audit.rejected);
      },
    });
  }

  /** Reports a shared store's health as `rampart_store_up{store}`; `up` is called at scrape time and must be cheap. */
  watchStore(store: 'redis' | 'database', up: () => boolean | undefined): void {
    this.#stores.set(store, up);
  }

  /** The observe phase of one exchange. Never throws. */
  observe(ctx: RequestContext, reply: FastifyReply): void {
    const route = ctx.route.name;
    const method = METHODS.has(ctx.request.method) ? ctx.request.method : 'OTHER';
    const status = reply.raw.statusCode;
    const statusClass = STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'other';
    this.#requests.inc({ route, method, status_class: statusClass });
    const durationMs = performance.now() - ctx.startTime;
    this.#duration.observe({ route }, durationMs / 1000);
    const upstream = ctx.route.upstream?.name;
    const code = ctx.errorCode;
    const policy = code === undefined ? undefined : (ctx.deniedBy ?? UNATTRIBUTED.get(code) ?? 'gateway');
    this.traffic.record({ status, durationMs, upstreamStatus: ctx.upstreamTime >= 0 ? ctx.upstreamStatus : code === 'RMP_UPSTREAM_TIMEOUT' || code === 'RMP_UPSTREAM_UNAVAILABLE' ? 0 : -1, errorCode: code, denied: code !== undefined && status < 500, policy, clientIp: ctx.clientIp });
    if (upstream !== undefined && ctx.upstreamTime >= 0) this.#upstreamDuration.observe({ route, upstream }, ctx.upstreamTime / 1000);
    if (code !== undefined) {
      this.#denials.inc({ route, policy: policy!, code, area: AREAS.get(code) ?? 'OTHER' });
      // Labels are names from the config (limits) or from the policy table (authentication).
      if (code === 'RMP_RATE_LIMITED') this.#rateLimited.inc({ route, limit: ctx.limitedBy ?? 'other' });
      else if (status === 401 && ctx.authPolicy !== undefined && !ctx.authenticated && code.startsWith('RMP_AUTH_')) this.#authFailures.inc({ route, policy: ctx.authPolicy });
      if (upstream !== undefined) {
        if (code === 'RMP_UPSTREAM_TIMEOUT') this.#upstreamErrors.inc({ route, upstream, kind: 'timeout' });
        else if (code === 'RMP_UPSTREAM_UNAVAILABLE') this.#upstreamErrors.inc({ route, upstream, kind: 'unavailable' });
        else if (code === 'RMP_UPSTREAM_CIRCUIT_OPEN') this.#upstreamErrors.inc({ route, upstream, kind: 'circuit_open' });
      }
    }
    if (upstream !== undefined && ctx.upstreamStatus >= 500) this.#upstreamErrors.inc({ route, upstream, kind: 'server_error' });
  }

  /** `exposition()` answers with `aggregate()` from now on (a worker of `--workers N`: the sum of all workers). */
  aggregateWith(aggregate: () => Promise<{ contentType: string; text: string }>): void {
    this.#aggregate = aggregate;
  }

  /** The text exposition format (version 0.0.4), and its content type. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    if (this.#aggregate !== undefined) return this.#aggregate();
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
