import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { asRampartError, PROBLEM_CONTENT_TYPE, RampartError, toProblem } from '../errors/problem.js';
import { RequestContext } from './context.js';
import { canonicalHost, normalizePath, splitUrl } from './path.js';
import { clientIp } from './client-ip.js';
import { recordDenial } from '../observability/denials.js';
import type { Pipeline, RequestHook } from './pipeline.js';

declare module 'fastify' {
  interface FastifyRequest {
    rampart: RequestContext | null;
  }
}

/** The current pipeline; swapped atomically on reload. */
export interface PipelineRef {
  current: Pipeline;
  /** Set when the process is draining: new requests get 503 RMP_SHUTTING_DOWN. */
  draining?: boolean;
  /** Port of the HTTPS listener, where plain-HTTP requests are redirected (unless configured). */
  httpsPort?: number;
}

export interface EnginePluginOptions {
  ref: PipelineRef;
  logger: Logger;
  /**
   * `gateway`: a request no route matches is answered 404/405 here. `library`: it goes on to the
   * host app's own routes with the defaults applied.
   */
  mode: 'gateway' | 'library';
  /** Process-wide shedding: the `Retry-After` seconds while overloaded, else undefined. */
  overloaded?: (() => number | undefined) | undefined;
}

/**
 * The policy engine as Fastify hooks: match + request phases on `onRequest`, the response phase on
 * `onSend`, the observe phase when the response closes. The gateway and the library plugin are this same code.
 */
async function engine(app: FastifyInstance, options: EnginePluginOptions): Promise<void> {
  const { ref, logger, mode, overloaded } = options;
  const gateway = mode === 'gateway';
  app.decorateRequest('rampart', null);

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const ctx = attachContext(request, reply, ref.current, logger);
    const pipeline = ctx.pipeline;
    const raw = request.raw;
    if (ref.draining) {
      // HTTP/2 has no Connection header: its session gets a GOAWAY from the runtime instead.
      const headers: Record<string, string> = raw.httpVersionMajor === 2 ? { 'retry-after': '1' } : { connection: 'close', 'retry-after': '1' };
      sendProblem(reply, new RampartError('RMP_SHUTTING_DOWN', { headers }), ctx, logger);
      return;
    }
    const shed = overloaded?.();
    if (shed !== undefined) {
      sendProblem(reply, new RampartError('RMP_OVERLOADED', { detail: 'The gateway is overloaded.', headers: { 'retry-after': String(shed) } }), ctx, logger);
      return;
    }
    // A request that is refused before routing, or that no route matches, still runs the defaults
    // (request id, per-IP limits, …) before its error, so probing is no cheaper than real use.
    let refusal: unknown;
    try {
      const method = request.method;
      const url = request.url;
      const q = url.indexOf('?');
      ctx.path = q === -1 ? url : url.slice(0, q); // what the access log shows if the checks below refuse it
      const [rawPath, query] = splitUrl(url);
      ctx.query = query;
      if (method === 'TRACE' || method === 'TRACK') {
        throw new RampartError('RMP_METHOD_REFUSED', { detail: `${method} is refused on every route.`, headers: { allow: '' } });
      }
      ctx.path = normalizePath(rawPath);
      ctx.host = canonicalHost(requestHost(raw));
      const host = ctx.host?.name;
      // A CORS preflight belongs to the route of the method it asks about, when that route answers
      // preflights itself: the route need not list OPTIONS, and the upstream never sees it. It
      // names no version (its headers are the browser's), so it never chooses one.
      const preflightMethod = method === 'OPTIONS' && raw.headers.origin !== undefined ? raw.headers['access-control-request-method'] : undefined;
      let match = pipeline.router.find(method, ctx.path, host, preflightMethod === undefined ? raw.headers : undefined, query);
      if (preflightMethod !== undefined) {
        const target = pipeline.router.find(preflightMethod, ctx.path, host);
        if (target !== null && target.route.handlesPreflight) match = target;
      }
      if (match !== null && gateway && ctx.protocol === 'http' && !match.route.allowInsecure) {
        // Plain HTTP reaches a route only when it says allowInsecure; the rest is redirected or
        // refused with the default policies only (nothing of the route runs, nothing is forwarded).
        refusal = insecureRefusal(ctx, ref);
      } else if (match !== null) {
        ctx.route = match.route;
        ctx.matched = true;
        ctx.params = match.params;
      } else if (gateway) {
        const allow = pipeline.router.allowed(ctx.path, host);
        refusal =
          allow.length > 0
            ? new RampartError('RMP_METHOD_NOT_ALLOWED', { detail: `${method} is not allowed here.`, headers: { allow: allow.join(', ') } })
            : new RampartError('RMP_ROUTE_NOT_FOUND', { detail: 'No route matches this request.' });
      }
    } catch (error) {
      refusal = error;
    }
    ctx.refusal = refusal;
    const next: HookHandlerDoneFunction = refusal === undefined ? done : () => sendProblem(reply, refusal, ctx, logger);
    runRequestHooks(ctx.route.requestHooks, 0, ctx, reply, next, logger);
  });

  app.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, value?: unknown) => void) => {
    const ctx = request.rampart;
    if (ctx !== null) runResponseHooks(ctx, reply);
    done(null, payload);
  });
}

/**
 * The response phase: runs before the response head is written, for every response — from
 * `onSend` for replies sent through Fastify, and from the proxy for streamed upstream responses.
 */
export function runResponseHooks(ctx: RequestContext, reply: FastifyReply): void {
  const hooks = ctx.route.responseHooks;
  for (let i = 0; i < hooks.length; i++) {
    try {
      hooks[i]!(ctx, reply);
    } catch (error) {
      ctx.pipeline.logger.error({ err: error, requestId: ctx.requestId, route: ctx.route.name }, 'response policy failed');
    }
  }
}

/** The observe phase, once the response is done or abandoned; then the request lets go of its pipeline. */
function finish(ctx: RequestContext, reply: FastifyReply, logger: Logger): void {
  ctx.finished = true;
  if (!reply.raw.writableFinished && ctx.onAbort !== undefined) ctx.onAbort();
  const releases = ctx.releases;
  if (releases !== undefined) for (let i = 0; i < releases.length; i++) releases[i]!();
  if (ctx.errorCode !== undefined) {
    try {
      recordDenial(ctx, reply.raw.statusCode);
    } catch (error) {
      logger.error({ err: error, requestId: ctx.requestId }, 'denial event failed');
    }
  }
  const metrics = ctx.pipeline.metrics;
  if (metrics !== undefined) {
    try {
      metrics.observe(ctx, reply);
    } catch (error) {
      logger.error({ err: error, requestId: ctx.requestId }, 'metrics failed');
    }
  }
  const hooks = ctx.route.logHooks;
  for (let i = 0; i < hooks.length; i++) {
    try {
      hooks[i]!(ctx, reply);
    } catch (error) {
      logger.error({ err: error, requestId: ctx.requestId }, 'log policy failed');
    }
  }
  ctx.pipeline.release();
}

/**
 * Gives a request its context on the current pipeline (the fallback route until routing): client
 * address, protocol, in-flight accounting and the observe phase when the response closes. Also
 * used for requests Fastify refuses before the hooks (bad URLs), so they get the response phase
 * (security headers, request id) and an access-log line like any other.
 */
export function attachContext(request: FastifyRequest, reply: FastifyReply, pipeline: Pipeline, logger: Logger): RequestContext {
  const startTime = performance.now();
  pipeline.acquire();
  const ctx = new RequestContext(pipeline, request, pipeline.fallback, startTime);
  request.rampart = ctx;
  // 'close' fires once per response, finished or cut off by the client (Fastify's onResponse
  // misses the latter), so the observe phase and the in-flight count never leak.
  reply.raw.once('close', () => finish(ctx, reply, logger));
  const raw = request.raw;
  ctx.clientIp = clientIp(raw, pipeline.trust);
  ctx.protocol = requestProtocol(raw, pipeline);
  const q = request.url.indexOf('?');
  ctx.path = q === -1 ? request.url : request.url.slice(0, q);
  return ctx;
}

/**
 * `https` on a TLS connection, or when the trusted proxy in front says the client used HTTPS
 * (the last `X-Forwarded-Proto` value: the one that proxy set; earlier ones came from further
 * away and may be the client's own).
 */
function requestProtocol(raw: FastifyRequest['raw'], pipeline: Pipeline): 'http' | 'https' {
  if ((raw.socket as TLSSocket).encrypted === true) return 'https';
  const trust = pipeline.trust;
  if (trust === undefined) return 'http';
  const proto = raw.headers['x-forwarded-proto'];
  if (typeof proto !== 'string' || !trust(raw.socket.remoteAddress ?? '', 0)) return 'http';
  const comma = proto.lastIndexOf(',');
  return (comma === -1 ? proto : proto.slice(comma + 1)).trim().toLowerCase() === 'https' ? 'https' : 'http';
}

/**
 * The request's host: HTTP/2 carries it in `:authority` (RFC 9113 §8.3.1), HTTP/1.1 in `Host`. An
 * HTTP/2 request with both, disagreeing, is malformed: a proxy in front may have judged it by one
 * and the route would be chosen by the other.
 */
function requestHost(raw: FastifyRequest['raw']): string | undefined {
  const host = raw.headers.host;
  if (raw.httpVersionMajor !== 2) {
    // RFC 9112 §3.2 (Node's own check is off: its bare 400 would bypass the engine).
    if (host === undefined && raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1) throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'An HTTP/1.1 request must have a Host header.' });
    return host;
  }
  const authority = raw.headers[':authority'] as string | undefined;
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'The :authority and Host of this request disagree.' });
  }
  return authority ?? host;
}

/** The answer to a plain-HTTP request for an HTTPS-only route (`server.insecureRequests`). */
function insecureRefusal(ctx: RequestContext, ref: PipelineRef): RampartError {
  const settings = ctx.pipeline.loaded.config.server.insecureRequests;
  if (settings.action === 'forbid') return new RampartError('RMP_HTTPS_REQUIRED', { detail: 'This route is served over HTTPS only.' });
  if (settings.action === 'upgrade-required') {
    return new RampartError('RMP_HTTPS_UPGRADE_REQUIRED', { detail: 'This route is served over HTTPS only.', headers: { upgrade: 'TLS/1.2, HTTP/1.1', connection: 'Upgrade' } });
  }
  const host = settings.redirectHost ?? ctx.host?.name;
  if (host === undefined) return new RampartError('RMP_HTTPS_REQUIRED', { detail: 'This route is served over HTTPS only (the request has no Host to redirect to).' });
  const port = settings.redirectPort ?? ref.httpsPort ?? 443;
  const location = `https://${host}${port === 443 ? '' : `:${port}`}${ctx.path}${ctx.query}`;
  return new RampartError('RMP_HTTPS_REDIRECT', { detail: `This route is served over HTTPS only: ${location}`, headers: { location } });
}

/** Runs request hooks in order; stays synchronous until a hook returns a promise. */
function runRequestHooks(
  hooks: readonly RequestHook[],
  from: number,
  ctx: RequestContext,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
  logger: Logger,
): void {
  for (let i = from; i < hooks.length; i++) {
    let result: void | Promise<void>;
    try {
      result = hooks[i]!(ctx);
    } catch (error) {
      ctx.deniedBy = ctx.route.requestHookNames[i];
      sendProblem(reply, error, ctx, logger);
      return;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => {
          // The client left while the hook waited: nothing further runs, nothing is forwarded.
          if (ctx.finished) return;
          if (ctx.localReply !== undefined) sendLocalReply(reply, ctx);
          else runRequestHooks(hooks, i + 1, ctx, reply, done, logger);
        },
        (error: unknown) => {
          if (ctx.finished) return;
          ctx.deniedBy = ctx.route.requestHookNames[i];
          sendProblem(reply, error, ctx, logger);
        },
      );
      return;
    }
    if (ctx.localReply !== undefined) {
      sendLocalReply(reply, ctx);
      return;
    }
  }
  done();
}

/** A policy ended the exchange itself (a CORS preflight, for example): nothing is forwarded. */
function sendLocalReply(reply: FastifyReply, ctx: RequestContext): void {
  // A request already refused (no route, wrong method, malformed) gets its refusal, never a
  // policy's local answer.
  if (ctx.refusal !== undefined) {
    ctx.localReply = undefined;
    sendProblem(reply, ctx.refusal, ctx, ctx.pipeline.logger);
    return;
  }
  const local = ctx.localReply!;
  reply.code(local.status).headers(local.headers);
  reply.send();
}

/** Renders any error as RFC 9457 problem+json. Unknown errors are logged and become a generic 500. */
export function sendProblem(reply: FastifyReply, error: unknown, ctx: RequestContext | null, logger: Logger): FastifyReply {
  const problem = asRampartError(error);
  const requestId = ctx?.requestId ?? reply.request.id;
  if (problem.status >= 500) {
    logger.error({ err: problem.cause ?? problem, requestId, code: problem.code, route: ctx?.route.name }, problem.cause instanceof Error ? problem.cause.message : problem.message);
  }
  if (reply.sent || reply.raw.headersSent) {
    // Too late for a problem body: cut the connection so the client sees the failure.
    reply.raw.destroy();
    return reply;
  }
  if (ctx !== null) ctx.errorCode = problem.code;
  if (ctx?.route.renderError !== undefined) return ctx.route.renderError(reply, problem, ctx);
  const url = reply.request.url;
  const body = JSON.stringify(toProblem(problem, requestId, ctx !== null && ctx.path !== '' ? ctx.path : url.split(/[?#]/)[0]));
  reply.code(problem.status).header('content-type', PROBLEM_CONTENT_TYPE);
  if (problem.headers !== undefined) reply.headers(problem.headers);
  return reply.send(body);
}

export const enginePlugin = fp(engine, { fastify: '5.x', name: 'rampart-engine' });
