import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Pipeline, CompiledRoute } from './pipeline.js';
import type { CanonicalHost } from './path.js';
import { traceContext, type Trace } from './trace-context.js';

/**
 * Per-request state shared by the policies of one request. One allocation per request; every
 * field is set in the constructor so the object keeps one shape.
 */
export class RequestContext {
  requestId: string;
  readonly startTime: number;
  readonly pipeline: Pipeline;
  readonly request: FastifyRequest;
  route: CompiledRoute;
  /** False for requests no route matched (404/405, or the host app's own routes in library mode). */
  matched: boolean;
  params: Record<string, string | undefined>;
  /** Normalized path (no query), as routed and as forwarded. */
  path: string;
  /** Raw query including its `?`, or ''. */
  query: string;
  clientIp: string;
  /** Set by an authentication policy that accepted the request's credentials. */
  authenticated: boolean;
  /** Who is calling, set by authentication (rate limits keyed by consumer or API key use it). */
  consumer: Consumer | undefined;
  /** Request headers not forwarded (credentials an authentication policy consumed). */
  hiddenHeaders: string[] | undefined;
  /** RateLimit-Policy / RateLimit items of the limits this request was counted against. */
  rateLimits: RateLimitEntry[] | undefined;
  /** Run once when the exchange is over (finished or abandoned): concurrency slots given back. */
  releases: (() => void)[] | undefined;
  /** The exchange is over (response finished or client gone): nothing more may start for it. */
  finished: boolean;
  /**
   * Checks of the upstream's whole answer before anything of it is sent (response rules). With
   * any, the proxy holds every answer — whatever its status or media type, within the route's
   * response bound — and runs them before the route's `responseBody` filters, on the answer as
   * the upstream sent it; a check throws a RampartError to refuse it.
   */
  responseChecks: ((response: BufferedResponse) => void)[] | undefined;
  /** The validated, canonical Host header (undefined when the request has none). */
  host: CanonicalHost | undefined;
  protocol: 'http' | 'https';
  /** The body to forward when a policy wraps the client's stream (body limits, inspection). */
  requestBody: Readable | undefined;
  /**
   * A JSON request body, read whole and parsed once (by `limits`, or by the first policy that needs
   * it): `bytes` is exactly what is forwarded, `value` what every policy checks.
   */
  jsonBody: { readonly bytes: Buffer; readonly value: unknown } | undefined;
  /** The OpenAPI operation the request was matched to (by the `openapi` policy), for its response allowlist. */
  operation: object | undefined;
  /** Extra headers for the upstream request, set by policies. */
  upstreamHeaders: Record<string, string> | undefined;
  /** Origin of the upstream target that answered. */
  target: string | undefined;
  /** Milliseconds from sending upstream to the upstream's response headers; -1 when not forwarded. */
  upstreamTime: number;
  /** The upstream's status (0 when it did not answer). */
  upstreamStatus: number;
  /** Code of the problem response sent, if any. */
  errorCode: string | undefined;
  /** The policy whose request hook refused the request, if one did. */
  deniedBy: string | undefined;
  /**
   * A policy recorded a security event for this request (its denial, with its own reason): the
   * observe phase adds none. Kept here, never looked up by request id, which the client may set.
   */
  evented: boolean;
  /** The authentication policy last tried (its name), for the metrics of refused credentials. */
  authPolicy: string | undefined;
  /** The configured name of the rate limit that refused the request (`ip` for the per-IP limit). */
  limitedBy: string | undefined;
  /** Why the request will be refused after the default policies ran (no route, malformed, …). */
  refusal: unknown;
  /** Set by a policy that answers the request itself (see `endWith`). */
  localReply: { status: number; headers: Record<string, string> } | undefined;
  /** Called when the client goes away before the response is finished (cancels the upstream call). */
  onAbort: (() => void) | undefined;
  /** The client connection and its counters at the start, for the access log's byte counts. */
  readonly socket: Socket | null;
  readonly bytesReadStart: number;
  readonly bytesWrittenStart: number;
  /** Worked out on first use (forward, access log, an event); null with `server.tracing: false`. */
  #trace: Trace | null | undefined;

  constructor(pipeline: Pipeline, request: FastifyRequest, route: CompiledRoute, startTime: number) {
    this.requestId = request.id;
    this.startTime = startTime;
    this.pipeline = pipeline;
    this.request = request;
    this.route = route;
    this.matched = false;
    this.params = EMPTY_PARAMS;
    this.path = '';
    this.query = '';
    this.clientIp = '';
    this.authenticated = false;
    this.consumer = undefined;
    this.hiddenHeaders = undefined;
    this.rateLimits = undefined;
    this.releases = undefined;
    this.finished = false;
    this.responseChecks = undefined;
    this.host = undefined;
    this.protocol = 'http';
    this.upstreamHeaders = undefined;
    this.requestBody = undefined;
    this.jsonBody = undefined;
    this.operation = undefined;
    this.target = undefined;
    this.upstreamTime = -1;
    this.upstreamStatus = 0;
    this.errorCode = undefined;
    this.deniedBy = undefined;
    this.evented = false;
    this.authPolicy = undefined;
    this.limitedBy = undefined;
    this.onAbort = undefined;
    this.localReply = undefined;
    this.refusal = undefined;
    const socket = request.raw.socket;
    this.socket = socket ?? null;
    this.bytesReadStart = socket?.bytesRead ?? 0;
    this.bytesWrittenStart = socket?.bytesWritten ?? 0;
    this.#trace = undefined;
  }

  /**
   * The W3C trace context of this exchange (`server.tracing`): the client's valid `traceparent`
   * continued, or a new trace; undefined when tracing is off.
   */
  get trace(): Trace | undefined {
    let trace = this.#trace;
    if (trace === undefined) trace = this.#trace = this.pipeline.tracing ? traceContext(this.request.raw.headers) : null;
    return trace ?? undefined;
  }

  /** The trace id (32 hex digits) logs and events can carry; undefined when tracing is off. */
  get traceId(): string | undefined {
    return this.trace?.traceId;
  }

  /**
   * Gives `release` back when the exchange is over — at once if it already is (a client that left
   * while a hook was waiting must not keep a slot).
   */
  addRelease(release: () => void): void {
    if (this.finished) release();
    else (this.releases ??= []).push(release);
  }

  /**
   * Ends the exchange with a local answer (no body) once the current request hook returns; later
   * request hooks and the upstream are skipped, the response phase still runs. Denials throw a
   * RampartError instead.
   */
  endWith(status: number, headers: Record<string, string>): void {
    this.localReply = { status, headers };
  }

  setUpstreamHeader(name: string, value: string): void {
    (this.upstreamHeaders ??= {})[name] = value;
  }
}

const EMPTY_PARAMS: Record<string, string | undefined> = Object.freeze({}) as Record<string, string | undefined>;

/** One limit's header items for a response (see src/policies/rate-limit). */
export interface RateLimitEntry {
  /** `"name";q=100;w=60` */
  readonly policy: string;
  /** `"name";r=42;t=18` */
  readonly state: string;
  /** Sent on allowed responses too (`headers: all`), not only on its own 429. */
  readonly always: boolean;
  /** This limit refused the request. */
  readonly denied: boolean;
}

/** The caller, as authentication established it. */
export interface Consumer {
  readonly id: string;
  readonly type: 'user' | 'client' | 'apiKey';
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  /** The API key's id, for limits keyed by API key. */
  readonly keyId?: string;
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * The upstream's answer, held whole for the body filters of the respond phase (see
 * `PolicyHooks.responseBody`). Only JSON answers are held for filters; others stream through.
 * Filters always see a parsed body; `ctx.responseChecks` also see answers that are not JSON
 * (or have no body), with `json` undefined.
 */
export interface BufferedResponse {
  readonly status: number;
  /** Media type, lowercased, without parameters ('' when the upstream sent none). */
  readonly mediaType: string;
  /** The parsed body. A filter that changes it (in place, or by assigning) sets `changed`. */
  json: unknown;
  /** Set by a filter that changed `json`: the body is then serialized again once, after the last filter. */
  changed: boolean;
}
