import { createHash } from 'node:crypto';
import { parseDuration } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import type { Consumer, RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { BEARER, bearerRefusal, repeatedAuthorization, setConsumer, tokenInQuery } from '../authn.js';
import { IntrospectionSchema } from './schema.js';

interface Answer {
  consumer: Consumer | undefined;
  jti: string | undefined;
  sub: string | undefined;
  iat: number | undefined;
  /** ms */
  until: number;
}

const CACHE_SIZE = 10_000;

/**
 * Opaque bearer tokens checked against an external authorization server (RFC 7662), with client
 * authentication. Answers are cached by the token's SHA-256 (never the token itself) up to the
 * token's `exp` or `cacheTtl`; an unreachable server fails closed (503).
 */
export const introspectionPolicy = definePolicy({
  name: 'introspection',
  phase: 'authenticate',
  description: 'Opaque bearer tokens checked by RFC 7662 introspection (cached by token hash, fail closed).',
  schema: IntrospectionSchema,
  create(options, ctx) {
    const refuse = bearerRefusal(options.realm);
    const ttl = parseDuration(options.cacheTtl);
    const negativeTtl = parseDuration(options.negativeTtl);
    const timeout = parseDuration(options.timeout);
    const revocation = ctx.stores.revocation(ctx.redis);
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;
    const hide = options.hideCredentials ? 'authorization' : undefined;
    const cache = new Map<string, Answer>();

    const introspect = async (token: string): Promise<Answer> => {
      const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
      if (options.clientAuth === 'client_secret_post') {
        form.set('client_id', options.clientId);
        form.set('client_secret', options.clientSecret);
      }
      let body: Record<string, unknown>;
      try {
        const response = await fetch(options.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(options.clientAuth === 'client_secret_basic' ? { authorization: basic } : {}) },
          body: form.toString(),
          signal: AbortSignal.timeout(timeout),
          redirect: 'error',
        });
        if (response.status !== 200) throw new Error(`introspection answered ${response.status}`);
        body = (await response.json()) as Record<string, unknown>;
        if (body === null || typeof body !== 'object') throw new Error('introspection answer is not an object');
      } catch (error) {
        throw new RampartError('RMP_AUTH_UNAVAILABLE', { detail: 'The token cannot be checked right now.', headers: { 'retry-after': '5' }, cause: error });
      }
      const now = Date.now();
      const exp = typeof body.exp === 'number' ? body.exp * 1000 : undefined;
      const active = body.active === true && (exp === undefined || exp > now) && (options.audience === undefined || body.aud === options.audience || (Array.isArray(body.aud) && body.aud.includes(options.audience)));
      if (!active) return { consumer: undefined, jti: undefined, sub: undefined, iat: undefined, until: now + negativeTtl };
      const scopeValue = body[options.scopesClaim];
      const scopes = typeof scopeValue === 'string' ? scopeValue.split(' ').filter((s) => s !== '') : [];
      const rolesValue = body[options.rolesClaim];
      const roles = Array.isArray(rolesValue) ? rolesValue.filter((r): r is string => typeof r === 'string') : [];
      const sub = typeof body.sub === 'string' && /^[\x20-\x7e]{1,256}$/.test(body.sub) ? body.sub : undefined;
      const clientId = typeof body.client_id === 'string' && /^[\x21-\x7e]{1,256}$/.test(body.client_id) ? body.client_id : undefined;
      const id = sub ?? (clientId !== undefined ? `client:${clientId}` : undefined);
      if (id === undefined) return { consumer: undefined, jti: undefined, sub: undefined, iat: undefined, until: now + negativeTtl };
      return {
        consumer: Object.freeze({ id, type: sub !== undefined ? 'user' : 'client', scopes: Object.freeze(scopes), roles: Object.freeze(roles), claims: Object.freeze({ ...body }) }),
        jti: typeof body.jti === 'string' ? body.jti : undefined,
        sub: id,
        iat: typeof body.iat === 'number' ? body.iat : undefined,
        until: Math.min(now + ttl, exp ?? Infinity),
      };
    };

    const judge = (req: RequestContext, answer: Answer): void | Promise<void> => {
      if (answer.consumer === undefined) throw refuse('RMP_AUTH_TOKEN_INVALID', 'The token is not active');
      const consumer = answer.consumer;
      const revoked = revocation.isRevoked(answer);
      if (revoked === true) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The token has been revoked');
      if (revoked === false) return setConsumer(req, consumer);
      return revoked.then((r) => {
        if (r) throw refuse('RMP_AUTH_TOKEN_REVOKED', 'The token has been revoked');
        setConsumer(req, consumer);
      });
    };

    return {
      hides: hide === undefined ? undefined : [hide],
      request(req) {
        if (tokenInQuery(req.query)) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Tokens are accepted only in the Authorization header');
        const authorization = req.request.raw.headers.authorization;
        if (authorization === undefined) {
          if (options.anonymous) return undefined;
          throw refuse('RMP_AUTH_REQUIRED');
        }
        if (repeatedAuthorization(req.request.raw.rawHeaders)) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Expected one Authorization header');
        const match = BEARER.exec(authorization);
        if (match === null) throw refuse('RMP_AUTH_INVALID_REQUEST', 'Expected Authorization: Bearer <token>');
        const key = createHash('sha256').update(match[1]!).digest('base64url');
        const hit = cache.get(key);
        if (hit !== undefined && hit.until > Date.now()) return judge(req, hit);
        return introspect(match[1]!).then((answer) => {
          if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
          if (answer.until > Date.now()) cache.set(key, answer);
          return judge(req, answer);
        });
      },
    };
  },
});
