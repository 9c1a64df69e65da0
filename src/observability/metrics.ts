import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
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

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#requests = new Counter({ name: 'rampart_requests_total', help: 'Requests answered, by route, method and status class.', labelNames: ['route', 'method', 'status_class'], registers });
    this.#duration = new Histogram({ name: 'rampart_request_duration_seconds', help: 'Time from the request arriving to its response finishing, by route.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.#upstreamDuration = new Histogram({ name: 'rampart_upstream_duration_seconds', help: 'Time from sending a request upstream to its response headers, by route and upstream.', labelNames: ['route', 'upstream'], buckets: LATENCY_BUCKETS, registers });
    this.#denials = new Counter({ name: 'rampart_denials_total', help: 'Requests the gateway answered with a problem, by route, the policy that refused it (`upstream` for an upstream answer refused or failed, `gateway` for refusals before any policy: no route, malformed), error code and its area (AUTH, AUTHZ, RATE, VALIDATION, …).', labelNames: ['route', 'policy', 'code', 'area'], registers });
    this.#upstreamErrors = new Counter({ name: 'rampart_upstream_errors_total', help: 'Upstream failures: timeout, unavailable (refused, reset), server_error (an upstream 5xx).', labelNames: ['route', 'upstream', 'kind'], registers });
    this.#events = new Counter({ name: 'rampart_security_events_total', help: 'Security events emitted, by type (the OWASP vocabulary: authn_login_fail, authz_fail, sys_config_reload, …) and level.', labelNames: ['type', 'level'], registers });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts every event of `events` (its `type` comes from Rampart's code, never from a request). */
  watch(events: Events): () => void {
    return events.addSink((event: EmittedEvent) => this.#events.inc({ type: event.type, level: event.level }));
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
      if (upstream !== undefined) {
        if (code === 'RMP_UPSTREAM_TIMEOUT') this.#upstreamErrors.inc({ route, upstream, kind: 'timeout' });
        else if (code === 'RMP_UPSTREAM_UNAVAILABLE') this.#upstreamErrors.inc({ route, upstream, kind: 'unavailable' });
      }
    }
    if (upstream !== undefined && ctx.upstreamStatus >= 500) this.#upstreamErrors.inc({ route, upstream, kind: 'server_error' });
  }

  /** The text exposition format (version 0.0.4), and its content type. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
