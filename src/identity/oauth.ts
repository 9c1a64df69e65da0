import type { FastifyReply } from 'fastify';
import { decodeJwt } from 'jose';
import { readBody as readRequestBody } from '../gateway/body.js';
import type { RequestContext } from '../gateway/context.js';
import { addressKey } from '../policies/rate-limit/limits.js';
import type { RampartError } from '../errors/problem.js';
import { apiKeyRevocationId } from './api-keys.js';
import { credentialKind } from './credentials.js';
import { invalidClient, JWT_BEARER_ASSERTION, OAuthError, type AuthenticatedClient, type PresentedClient } from './clients.js';
import { clientOf, guarded, route, type BuiltinRoute, type ErrorRenderer } from './route-kit.js';
import type { ClientInfo, IdentityService } from './service.js';
import type { IdentityConfig } from './schema.js';

/** Form bodies of the OAuth endpoints are a handful of parameters. */
const MAX_FORM = 16 * 1024;
const FORM = /^application\/x-www-form-urlencoded\s*(;\s*charset=utf-8\s*)?$/i;
const BASIC = /^Basic ([A-Za-z0-9+/]+={0,2})$/i;

/** Answers an OAuth error as RFC 6749 §5.2 says: a JSON object with `error` and `error_description`, never cached. */
function sendOAuthError(reply: FastifyReply, error: OAuthError): FastifyReply {
  reply.code(error.status).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').header('pragma', 'no-cache');
  if (error.headers !== undefined) reply.headers(error.headers);
  return reply.send(JSON.stringify({ error: error.error, error_description: error.description }));
}

/**
 * Any other refusal on these routes (the default policies': a rate limit, a body too large; the
 * store unavailable) in the same format, keeping its status and headers (`Retry-After`).
 */
const renderOAuth: ErrorRenderer = (reply: FastifyReply, error: RampartError) => {
  const code = error.status === 503 || error.status === 429 ? 'temporarily_unavailable' : error.status >= 500 ? 'server_error' : 'invalid_request';
  return sendOAuthError(reply, new OAuthError(error.status, code, error.detail ?? error.message, error.headers));
};

/**
 * The OAuth 2.0 endpoints of the identity service, for programs and for other gateways:
 * `POST /oauth/token` (client credentials, RFC 6749 §4.4), `/oauth/revoke` (RFC 7009) and
 * `/oauth/introspect` (RFC 7662). Form-encoded bodies only, parameters never in the URL, errors
 * in the RFC 6749 §5.2 format (not problem+json), failed client authentications throttled per
 * client and per address.
 */
export function oauthRoutes(config: IdentityConfig, service: IdentityService | undefined): BuiltinRoute[] {
  const run = guarded(service);
  const issuer = config.issuer;
  const firstParty = config.clientId;
  const endpoint = (name: string, path: string, work: (s: IdentityService, ctx: RequestContext, reply: FastifyReply, form: Map<string, string>) => Promise<unknown>): BuiltinRoute => ({
    route: route(name, path, ['POST'], false),
    renderError: renderOAuth,
    handler: run(async (s, ctx, reply) => {
      try {
        const form = await readForm(ctx);
        return await work(s, ctx, reply, form);
      } catch (error) {
        if (error instanceof OAuthError) return sendOAuthError(reply, error);
        throw error;
      }
    }),
  });

  /**
   * Client authentication, throttled: past the limit of failures for this client from this
   * address (or from this address at all), 429 before any check. Per client *and* address, so a
   * stranger naming a client cannot lock it out everywhere (client ids are not secret).
   */
  const authenticate = async (s: IdentityService, ctx: RequestContext, presented: PresentedClient): Promise<AuthenticatedClient> => {
    const client = clientOf(ctx);
    const ip = addressKey(ctx.clientIp);
    const who = `${throttleKey(presented)}|${ip}`;
    const [byClient, byIp] = await Promise.all([s.limits.clientAuth.check(who), s.limits.clientAuthIp.check(ip)]);
    if (!byClient.allowed || !byIp.allowed) {
      const retry = Math.max(1, Math.ceil(Math.max(byClient.allowed ? 0 : byClient.retryAfterMs, byIp.allowed ? 0 : byIp.retryAfterMs) / 1000));
      s.emit({ type: 'authn_login_fail_max', level: 'WARN', description: 'client authentication throttled after repeated failures', ...(presented.id !== undefined ? { args: [presented.id], subject: `client:${presented.id}` } : {}), data: { kind: 'client' } }, client);
      throw new OAuthError(429, 'temporarily_unavailable', `Too many failed client authentications; retry in ${retry} s.`, { 'retry-after': String(retry) });
    }
    try {
      return await s.clients.authenticate(presented, [`${issuer}/oauth/token`, issuer, `${issuer}${ctx.path}`], client);
    } catch (error) {
      if (error instanceof OAuthError && error.error === 'invalid_client') await Promise.all([s.limits.clientAuth.consume(who), s.limits.clientAuthIp.consume(ip)]);
      throw error;
    }
  };

  return [
    endpoint('identity-oauth-token', '/oauth/token', async (s, ctx, reply, form) => {
      const presented = presentedClient(ctx, form);
      const client = await authenticate(s, ctx, presented);
      const grant = form.get('grant_type');
      if (grant === undefined) throw new OAuthError(400, 'invalid_request', 'grant_type is required.');
      // Only the client credentials grant: passwords go to /api/v1/auth/login, never through OAuth.
      if (grant !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported.');
      const scope = form.get('scope');
      if (scope !== undefined && !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(scope)) throw new OAuthError(400, 'invalid_scope', 'scope must be space-separated scope tokens (RFC 6749 §3.3).');
      const tokens = await s.clients.issue(client, scope, clientOf(ctx));
      reply.code(200).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').header('pragma', 'no-cache');
      return reply.send(JSON.stringify(tokens));
    }),

    endpoint('identity-oauth-revoke', '/oauth/revoke', async (s, ctx, reply, form) => {
      const presented = presentedClient(ctx, form);
      // The first-party app is a public client (RFC 7009 §2.1): it names itself and revokes what it holds.
      const requester = presented.method === 'none' && presented.id === firstParty ? firstParty : (await authenticate(s, ctx, presented)).id;
      const token = form.get('token');
      if (token === undefined) throw new OAuthError(400, 'invalid_request', 'token is required.');
      await revoke(s, token, requester, firstParty, clientOf(ctx));
      // §2.2: 200 whether or not the token was valid; the body is empty.
      return reply.code(200).header('cache-control', 'no-store').header('pragma', 'no-cache').send();
    }),

    endpoint('identity-oauth-introspect', '/oauth/introspect', async (s, ctx, reply, form) => {
      const requester = await authenticate(s, ctx, presentedClient(ctx, form));
      const token = form.get('token');
      if (token === undefined) throw new OAuthError(400, 'invalid_request', 'token is required.');
      const answer = (await introspect(s, token, requester, firstParty)) ?? { active: false };
      reply.code(200).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').header('pragma', 'no-cache');
      return reply.send(JSON.stringify(answer));
    }),
  ];
}

/**
 * The form body: `application/x-www-form-urlencoded` (RFC 6749 §4.4.2), at most 16 KiB, each
 * parameter at most once (§3.2), empty values as omitted (§3.1). Parameters in the URL are
 * refused: credentials there end up in logs (§2.3.1).
 */
async function readForm(ctx: RequestContext): Promise<Map<string, string>> {
  if (ctx.query.length > 1) throw new OAuthError(400, 'invalid_request', 'Parameters go in the form body, never in the URL.');
  const type = ctx.request.raw.headers['content-type'];
  if (type === undefined || !FORM.test(type.trim())) throw new OAuthError(400, 'invalid_request', 'Send the parameters as application/x-www-form-urlencoded.');
  const body = (await readRequestBody(ctx.requestBody ?? ctx.request.raw, MAX_FORM)).toString('utf8');
  const form = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body)) {
    if (form.has(name)) throw new OAuthError(400, 'invalid_request', `The parameter ${safeName(name)} is given more than once.`);
    if (value !== '') form.set(name, value);
  }
  return form;
}

/**
 * How the request authenticates its client: HTTP Basic (RFC 6749 §2.3.1, id and secret
 * form-encoded first), `client_id` + `client_secret` in the body, or a JWT assertion (RFC 7523
 * §2.2); a `client_id` alone names a public client. More than one method is refused (§2.3).
 */
function presentedClient(ctx: RequestContext, form: Map<string, string>): PresentedClient {
  const authorization = ctx.request.raw.headers.authorization;
  const id = form.get('client_id');
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  const assertionType = form.get('client_assertion_type');
  const methods = (authorization !== undefined ? 1 : 0) + (secret !== undefined ? 1 : 0) + (assertion !== undefined || assertionType !== undefined ? 1 : 0);
  if (methods > 1) throw new OAuthError(400, 'invalid_request', 'Use one client authentication method per request.');
  if (authorization !== undefined) {
    const match = BASIC.exec(authorization);
    if (match === null) throw invalidClient('Authenticate the client with HTTP Basic, client_secret_post or a client assertion.');
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) throw invalidClient();
    const basicId = formDecode(decoded.slice(0, colon));
    const basicSecret = formDecode(decoded.slice(colon + 1));
    if (basicId === undefined || basicSecret === undefined) throw invalidClient();
    if (id !== undefined && id !== basicId) throw new OAuthError(400, 'invalid_request', 'client_id differs from the authenticated client.');
    return { method: 'client_secret_basic', id: basicId, secret: basicSecret };
  }
  if (secret !== undefined) {
    if (id === undefined) throw invalidClient();
    return { method: 'client_secret_post', id, secret };
  }
  if (assertion !== undefined || assertionType !== undefined) {
    if (assertionType !== JWT_BEARER_ASSERTION || assertion === undefined) throw invalidClient(`client_assertion_type must be ${JWT_BEARER_ASSERTION}, with a client_assertion.`);
    return { method: 'private_key_jwt', id, assertion };
  }
  if (id === undefined) throw invalidClient();
  return { method: 'none', id };
}

/** RFC 7009 §2.1: only a token issued to the requesting client is revoked by it; an unknown one changes nothing. */
async function revoke(s: IdentityService, token: string, requester: string, firstParty: string, client: ClientInfo): Promise<void> {
  const notYours = () => new OAuthError(400, 'unauthorized_client', 'The token was not issued to this client.');
  const actor = requester === firstParty ? firstParty : `client:${requester}`;
  if (credentialKind(token) === 'apiKey') {
    const found = await s.apiKeys.lookup(token);
    if (found === undefined) return;
    if (requester !== firstParty) throw notYours();
    if (found.revoked !== true) await s.apiKeys.revoke(actor, found.id, client, 'revoked_at_endpoint');
    return;
  }
  if (token.split('.').length === 3) {
    const payload = await s.tokens.verifyAccess(token, { allowExpired: true });
    if (payload === undefined) return;
    if (payload.client_id !== requester) throw notYours();
    if (payload.exp! * 1000 > Date.now()) await s.revokeAccessToken(payload.jti!, payload.exp!, payload.sub!, actor, client);
    return;
  }
  const refresh = await s.refreshTokenInfo(token);
  if (refresh === undefined) return;
  if (refresh.clientId !== requester) throw notYours();
  // A spent token still names its session: a thief may hold its successor (§2.1, the whole grant).
  if (refresh.sessionLive) await s.revokeSession(refresh.family, refresh.userId, actor, client);
}

/**
 * RFC 7662 §2.2: the token's state and claims when it is active and the client may see it (a
 * client with `introspection` sees every token; any other only its own); otherwise undefined,
 * answered `{"active": false}` and nothing else (§2.2, and §4 on not telling why).
 */
async function introspect(s: IdentityService, token: string, requester: AuthenticatedClient, firstParty: string): Promise<Record<string, unknown> | undefined> {
  const visible = (clientId: string) => requester.introspection || clientId === requester.id;
  if (credentialKind(token) === 'apiKey') {
    const found = await s.apiKeys.lookup(token);
    if (found === undefined || found.revoked === true || found.expiresAt === undefined || found.expiresAt <= Date.now() || !visible(firstParty)) return undefined;
    if (await s.revocation.isRevoked({ jti: apiKeyRevocationId(found.id) })) return undefined;
    const key = await s.apiKeys.get(found.id);
    return { active: true, token_type: 'api_key', client_id: firstParty, sub: found.consumer.id, scope: found.consumer.scopes.join(' '), exp: Math.floor(found.expiresAt / 1000), iat: key === undefined ? undefined : Math.floor(Date.parse(key.createdAt) / 1000), iss: s.tokens.issuer };
  }
  if (token.split('.').length === 3) {
    const payload = await s.tokens.verifyAccess(token);
    if (payload === undefined || typeof payload.client_id !== 'string' || !visible(payload.client_id)) return undefined;
    if (await s.revocation.isRevoked({ jti: payload.jti, sub: payload.sub, iat: payload.iat })) return undefined;
    return {
      active: true,
      token_type: 'Bearer',
      scope: payload.scope,
      client_id: payload.client_id,
      sub: payload.sub,
      aud: payload.aud,
      iss: payload.iss,
      exp: payload.exp,
      iat: payload.iat === undefined ? undefined : Math.floor(payload.iat),
      jti: payload.jti,
      ...(Array.isArray(payload.roles) ? { roles: payload.roles } : {}),
    };
  }
  const refresh = await s.refreshTokenInfo(token);
  if (refresh === undefined || !refresh.active || !visible(refresh.clientId)) return undefined;
  return { active: true, token_type: 'refresh_token', client_id: refresh.clientId, sub: refresh.userId, scope: refresh.scope, exp: refresh.exp, iat: refresh.iat, iss: s.tokens.issuer };
}

/** What failed authentications are counted under: the client id the request named. */
function throttleKey(presented: PresentedClient): string {
  if (presented.id !== undefined) return `client:${presented.id}`;
  if (presented.method === 'private_key_jwt') {
    try {
      const iss = decodeJwt(presented.assertion).iss;
      if (typeof iss === 'string' && iss.length <= 64) return `client:${iss}`;
    } catch {
      // not a JWT: counted as no client
    }
  }
  return 'client:?';
}

/** `application/x-www-form-urlencoded` decoding of a Basic credential part; undefined when malformed. */
function formDecode(part: string): string | undefined {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** A parameter name fit to quote back (the value never is). */
function safeName(name: string): string {
  return /^[a-z_]{1,32}$/.test(name) ? name : 'a parameter';
}
