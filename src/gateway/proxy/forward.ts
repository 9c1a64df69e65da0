import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { RampartError } from '../../errors/problem.js';
import type { RequestContext } from '../context.js';
import type { Target, Upstream } from './upstream.js';
import { requestHasBody, upstreamRequestHeaders, type ForwardingInfo } from './headers.js';
import { plainAddress } from '../client-ip.js';
import { intercept, sendHead, type Intercepted } from './response-body.js';
import { setTraceHeaders } from '../trace-context.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'QUERY']);

/** Errors raised before anything was sent: safe to retry on another target. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);
/** What counts against a target's health besides connection errors and timeouts: it dropped the connection. */
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * The forward phase: sends the request to a target of the route's upstream and streams the
 * answer back. Bodies are streamed both ways, except answers the response engine takes over
 * (response-body.ts): refused at their head, or held for body filters and response checks.
 */
export async function forward(ctx: RequestContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const route = ctx.route;
  const upstream = route.upstream!;
  // The client is already gone (it left while a policy waited): nothing to forward.
  if (ctx.finished) return reply;
  // Shed rather than queue: past maxInFlight the answer is immediate.
  if (upstream.maxInFlight > 0) {
    if (upstream.inflight >= upstream.maxInFlight) {
      throw new RampartError('RMP_OVERLOADED', { detail: 'Too many requests in flight to this service.', headers: { 'retry-after': '1' } });
    }
    upstream.inflight++;
    ctx.addRelease(() => upstream.inflight--);
  }
  const raw = request.raw;
  const method = request.method;
  const hasBody = requestHasBody(raw.headers);
  const path = route.mapPath(ctx) + ctx.query;
  const forwarding = forwardingInfo(ctx, request, upstream);
  const maxAttempts = IDEMPOTENT.has(method) && !hasBody ? upstream.retries + 1 : 1;
  // Body filters or checks read the answer: it must come whole, and uncompressed if the upstream
  // honours that (a compressed one is decompressed within the bound, never passed unfiltered).
  const filtering = route.bodyFilters.length > 0 || ctx.responseChecks !== undefined;
  const intercepting = filtering || route.headHooks.length > 0;
  // The same trace (and gateway span) on every attempt.
  const trace = ctx.trace;

  // Abort the upstream request when the client goes away before the response is done.
  const abort = new AbortSignalLite();
  ctx.onAbort = () => abort.abort();

  let taken: Intercepted | undefined;
  let lastError: RampartError | undefined;
  for (let attempt = 1; ; attempt++) {
    const target = upstream.pick(Date.now());
    if (target === undefined) {
      // Every circuit is open: a retry reports the attempt that failed, a first try fails fast.
      if (lastError !== undefined) throw lastError;
      throw new RampartError('RMP_UPSTREAM_CIRCUIT_OPEN', { detail: 'The upstream is failing; it is not tried again yet.', headers: { 'retry-after': String(upstream.retryAfter(Date.now())) }, cause: new Error(`upstream '${upstream.name}': every target's circuit is open`) });
    }
    ctx.target = target.origin;
    const headers = upstreamRequestHeaders(raw.headers, hostFor(forwarding, upstream, target), ctx.upstreamHeaders, ctx.hiddenHeaders, route.hiddenHeaders);
    if (trace !== undefined) setTraceHeaders(headers, trace);
    const sentAt = performance.now();
    if (filtering) {
      headers['accept-encoding'] = 'identity';
      // A part of a JSON document cannot be parsed, so it could not be filtered.
      if (headers.range !== undefined) delete headers.range;
      if (headers['if-range'] !== undefined) delete headers['if-range'];
    }
    try {
      // undici writes the body straight into the client response (no intermediate stream); the
      // factory runs when the upstream's headers arrive: the response phase runs there.
      await target.pool.stream(
        {
          method: method as Dispatcher.HttpMethod,
          path: target.basePath + path,
          headers,
          body: hasBody ? (ctx.requestBody ?? raw) : null,
          signal: abort as unknown as AbortSignal,
        },
        ({ statusCode, headers: upstreamHeaders }) => {
          ctx.upstreamTime = performance.now() - sentAt;
          ctx.upstreamStatus = statusCode;
          upstream.succeeded(target);
          if (intercepting) {
            taken = intercept(ctx, reply, statusCode, upstreamHeaders as IncomingHttpHeaders, filtering);
            if (taken !== undefined) return taken;
          }
          // undici writes the body straight into the client response.
          return sendHead(ctx, reply, statusCode, upstreamHeaders as IncomingHttpHeaders);
        },
      );
    } catch (error) {
      if (abort.aborted) return reply; // client gone: nobody to answer
      // The response engine refused the answer (at its head, or past the bound): nothing of it was sent.
      if (taken?.refusal !== undefined && !reply.raw.headersSent) {
        clearHeaders(reply);
        taken.settle(ctx, reply);
      }
      // A policy's body stream refused the body (a chunked body over the limit).
      const refused = error instanceof RampartError ? error : (error as { cause?: unknown }).cause instanceof RampartError ? ((error as { cause: RampartError }).cause) : undefined;
      if (refused !== undefined && !reply.raw.headersSent) {
        clearHeaders(reply);
        // The rest of the body will not be read: close the connection after answering.
        reply.header('connection', 'close');
        throw refused;
      }
      if (reply.raw.headersSent) {
        // Failed mid-body (body timeout, upstream reset): too late for a problem; cut the response.
        reply.raw.destroy();
        return reply;
      }
      clearHeaders(reply);
      const code = (error as { code?: string }).code ?? '';
      const isConnect = CONNECT_ERRORS.has(code);
      if (isConnect || TIMEOUTS.has(code) || RESETS.has(code)) upstream.failed(target, Date.now());
      lastError = upstreamError(error, code, upstream, target);
      if (isConnect && attempt < maxAttempts) continue;
      throw lastError;
    }
    // The whole answer is in: the engine sends what the client gets (or throws its refusal).
    if (taken !== undefined) taken.settle(ctx, reply);
    return reply;
  }
}

/**
 * Nothing of the upstream's answer may reach a problem response: its headers may already be on
 * the reply when writing the head failed.
 */
function clearHeaders(reply: FastifyReply): void {
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
}

/**
 * The least undici needs as a `signal` (an emitter of 'abort', see undici's addAbortListener):
 * an AbortController per request cost about 5 µs of CPU, more than the rest of Rampart's own code.
 */
class AbortSignalLite {
  aborted = false;
  reason: unknown = undefined;
  #listener: (() => void) | undefined;

  once(_event: 'abort', listener: () => void): this {
    this.#listener = listener;
    return this;
  }

  on(event: 'abort', listener: () => void): this {
    return this.once(event, listener);
  }

  removeListener(_event: 'abort', listener: () => void): this {
    if (this.#listener === listener) this.#listener = undefined;
    return this;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new Error('client closed the connection');
    this.#listener?.();
  }
}

function upstreamError(error: unknown, code: string, upstream: Upstream, target: Target): RampartError {
  const timeout = TIMEOUTS.has(code);
  return new RampartError(timeout ? 'RMP_UPSTREAM_TIMEOUT' : 'RMP_UPSTREAM_UNAVAILABLE', {
    // The upstream's name and address are internal topology: logged, never sent.
    detail: timeout ? 'The upstream did not answer in time.' : 'The upstream could not be reached.',
    cause: Object.assign(new Error(`upstream '${upstream.name}' ${target.origin}: ${code || (error as Error).message}`), { cause: error }),
  });
}

function forwardingInfo(ctx: RequestContext, request: FastifyRequest, upstream: Upstream): ForwardingInfo {
  const headers = request.raw.headers;
  const peer = plainAddress(request.raw.socket.remoteAddress);
  const trust = ctx.pipeline.trust;
  const fromTrustedProxy = trust !== undefined && trust(request.raw.socket.remoteAddress ?? '', 0);
  const incomingFor = fromTrustedProxy ? headerValue(headers['x-forwarded-for']) : undefined;
  const incomingProto = fromTrustedProxy ? headerValue(headers['x-forwarded-proto']) : undefined;
  const incomingHost = fromTrustedProxy ? headerValue(headers['x-forwarded-host']) : undefined;
  return {
    forwardedFor: incomingFor !== undefined ? `${incomingFor}, ${peer}` : peer,
    forwardedProto: incomingProto ?? ctx.protocol,
    forwardedHost: incomingHost ?? ctx.host?.header,
    host: upstream.hostMode === 'preserve' ? ctx.host?.header : undefined,
  };
}

function hostFor(forwarding: ForwardingInfo, upstream: Upstream, target: Target): ForwardingInfo {
  const mode = upstream.hostMode;
  if (mode === 'preserve') return forwarding;
  forwarding.host = mode === 'target' ? target.hostHeader : mode;
  return forwarding;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}
