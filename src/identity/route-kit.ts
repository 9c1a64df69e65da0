import type { FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { RouteConfig } from '../config/schema.js';
import { RampartError } from '../errors/problem.js';
import type { RequestContext } from '../gateway/context.js';
import { addressKey } from '../policies/rate-limit/limits.js';
import type { Actor, ClientInfo, IdentityService } from './service.js';

/** What the identity service's route modules share: route shapes, the caller, refusals. */

export type RouteHandler = (ctx: RequestContext, reply: FastifyReply) => Promise<unknown>;

/** Renders a refusal in a format of the route's own (the OAuth endpoints answer as RFC 6749 §5.2 says). */
export type ErrorRenderer = (reply: FastifyReply, error: RampartError, ctx: RequestContext) => FastifyReply;

/** A route the gateway serves itself: an ordinary route (default policies apply) with a handler instead of an upstream. */
export interface BuiltinRoute {
  route: RouteConfig;
  handler: RouteHandler;
  /** Errors of this route (its policies' too) rendered this way instead of problem+json. */
  renderError?: ErrorRenderer;
}

export const closed = { additionalProperties: false } as const;
/** A page size in a query string: 1 to 100. */
export const Limit = Type.String({ pattern: '^(?:[1-9]|[1-9][0-9]|100)$' });
export const NoQuery = Type.Object({}, closed);

// Answers about credentials and accounts are never cached, refusals by the jwt policy included.
const noCache = { headers: { cacheControl: 'no-store' } };

/**
 * A built-in route: public (the authentication endpoints, which limit themselves) or taking an
 * access token of this service (`jwt: { identity: true }`); never cached unless `cacheable`.
 */
export function route(name: string, path: string, methods: string[], authenticated: boolean, cacheable = false): RouteConfig {
  return {
    name,
    match: { path, methods: methods as RouteConfig['match']['methods'] },
    public: !authenticated,
    allowInsecure: false,
    policies: { ...(authenticated ? { jwt: { identity: true } } : {}), ...(cacheable ? {} : noCache) },
  };
}

/**
 * Wraps handlers of a (possibly not running) service: 503 while it is not, database failures as
 * 503 RMP_STORE_UNAVAILABLE, and every refusal marked `no-store`.
 */
export function guarded(service: IdentityService | undefined) {
  return (handler: (s: IdentityService, ctx: RequestContext, reply: FastifyReply) => Promise<unknown>): RouteHandler => {
    return (ctx, reply) => {
      if (service === undefined) return Promise.reject(new RampartError('RMP_STORE_UNAVAILABLE', { detail: 'The identity service is not running.', headers: { 'retry-after': '5' } }));
      return handler(service, ctx, reply).catch((error: unknown) => {
        throw noStore(storeError(error));
      });
    };
  };
}

export function clientOf(ctx: RequestContext): ClientInfo {
  const ua = ctx.request.raw.headers['user-agent'];
  return { ip: ctx.clientIp, userAgent: typeof ua === 'string' ? ua : undefined, requestId: ctx.requestId };
}

/** The caller, from the access token the route's jwt policy (identity: true) verified. */
export function actorOf(ctx: RequestContext): Actor {
  const consumer = ctx.consumer;
  if (consumer === undefined || consumer.type !== 'user') throw new RampartError('RMP_AUTH_REQUIRED', { headers: { 'www-authenticate': 'Bearer realm="rampart"' } });
  const claims = consumer.claims ?? {};
  return {
    id: consumer.id,
    roles: consumer.roles,
    sid: typeof claims.sid === 'string' ? claims.sid : undefined,
    jti: typeof claims.jti === 'string' ? claims.jti : undefined,
    exp: typeof claims.exp === 'number' ? claims.exp : undefined,
  };
}

export function isAdmin(actor: Actor): boolean {
  return actor.roles.includes('admin');
}

export function requireAdmin(s: IdentityService, actor: Actor, ctx: RequestContext): void {
  if (isAdmin(actor)) return;
  denied(s, actor, ctx, 'admin role required');
  throw new RampartError('RMP_AUTHZ_DENIED', { detail: 'This needs the admin role.' });
}

export function denied(s: IdentityService, actor: Actor, ctx: RequestContext, why: string): void {
  ctx.evented = true;
  s.emit({ type: 'authz_fail', level: 'WARN', description: `refused: ${why}`, args: [actor.id], actor: actor.id, subject: ctx.params.id ?? '', route: ctx.route.name, data: { method: ctx.request.method } }, clientOf(ctx));
}

export async function limit(limiter: IdentityService['limits']['login'], ctx: RequestContext, key = addressKey(ctx.clientIp)): Promise<void> {
  const decision = await limiter.consume(key);
  if (!decision.allowed) {
    ctx.limitedBy = limiter.label;
    const retry = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    throw new RampartError('RMP_RATE_LIMITED', { detail: 'Too many attempts from this address.', headers: { 'retry-after': String(retry) } });
  }
}

/** Errors of the identity endpoints concern credentials too: no cache keeps them. */
export function noStore(error: unknown): unknown {
  if (!(error instanceof RampartError)) return error;
  return new RampartError(error.code, { detail: error.detail, headers: { ...error.headers, 'cache-control': 'no-store' }, extensions: error.extensions, cause: error.cause });
}

/** Database failures answer 503 RMP_STORE_UNAVAILABLE (nothing was changed); anything else stays an error. */
export function storeError(error: unknown): unknown {
  if (error instanceof RampartError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : '';
  const store =
    (typeof code === 'string' && (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|ENOSPC|EIO)$/.test(code) || /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|CORRUPT)/.test(code) || /^(08|53|57P|40P01|40001)/.test(code))) ||
    /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|not queryable|Connection closed/.test(message);
  return store ? new RampartError('RMP_STORE_UNAVAILABLE', { detail: 'The identity store is unavailable; nothing was changed.', headers: { 'retry-after': '5' }, cause: error }) : error;
}
