import { Type } from '@sinclair/typebox';
import { requestHasBody } from '../gateway/proxy/headers.js';
import type { FastifyReply } from 'fastify';
import { RampartError } from '../errors/problem.js';
import type { RequestContext } from '../gateway/context.js';
import { DURATION_PATTERN, parseDuration } from '../config/units.js';
import { check, queryObject, readBody, sendJson } from './http.js';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { Actor, IdentityService, MfaChallenge, TokenResponse } from './service.js';
import type { SecondFactor } from './mfa.js';
import { randomSecret, TokenHasher } from './tokens.js';
import type { IdentityConfig } from './schema.js';

import { apiKeyRoutes } from './api-key-routes.js';
import { clientRoutes } from './client-routes.js';
import { ASSERTION_ALGORITHMS, CLIENT_AUTH_METHODS } from './clients.js';
import { oauthRoutes } from './oauth.js';
import { usersV1, usersV2, type UsersView } from './user-views.js';
import { actorOf, clientOf, closed, denied, guarded, isAdmin, limit, Limit, NoQuery, requireAdmin, route, type BuiltinRoute } from './route-kit.js';

export type { BuiltinRoute, ErrorRenderer, RouteHandler } from './route-kit.js';
export { identityVersions } from './user-views.js';
export { storeError } from './route-kit.js';

const Email = Type.String({ minLength: 3, maxLength: 320 });
// Length rules (and the 1 KiB cap) are the password rules' own, with their own codes.
const Password = Type.String({ minLength: 1, maxLength: 4096 });
const Token = Type.String({ minLength: 16, maxLength: 512, pattern: '^[A-Za-z0-9._~-]+$' });
const Role = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' });
export const Roles = Type.Array(Role, { maxItems: 32, uniqueItems: true });

const RegisterBody = Type.Object({ email: Email, password: Password, invite: Type.Optional(Token) }, closed);
const LoginBody = Type.Object({ email: Type.String({ maxLength: 1024 }), password: Type.String({ maxLength: 4096 }) }, closed);
const RefreshBody = Type.Object({ refresh_token: Token }, closed);
const LogoutBody = Type.Object({ refresh_token: Type.Optional(Token) }, closed);
const PasswordChangeBody = Type.Object({ passwordChangeToken: Type.String({ minLength: 16, maxLength: 4096 }), newPassword: Password }, closed);
const CreateUserBody = Type.Object({ email: Email, roles: Type.Optional(Roles), password: Type.Optional(Password) }, closed);
const ChangePasswordBody = Type.Object({ currentPassword: Password, newPassword: Password }, closed);
const InviteBody = Type.Object({ email: Type.Optional(Email), roles: Type.Optional(Roles), expiresIn: Type.Optional(Type.String({ pattern: DURATION_PATTERN })) }, closed);
const UsersQuery = Type.Object(
  { limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ maxLength: 512 })), email: Type.Optional(Type.String({ maxLength: 320 })), role: Type.Optional(Role), status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('locked')])) },
  closed,
);
const Iso = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}(T[0-9:.]+Z)?$' });
const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,15}$' })),
    type: Type.Optional(Type.String({ pattern: '^[a-z]+(_[a-z0-9]+)+$' })),
    actor: Type.Optional(Type.String({ maxLength: 300 })),
    subject: Type.Optional(Type.String({ maxLength: 300 })),
    since: Type.Optional(Iso),
    until: Type.Optional(Iso),
  },
  closed,
);
const MfaToken = Type.String({ minLength: 16, maxLength: 4096 });
// As authenticator apps show it: six digits, perhaps with a space in the middle.
const TotpCode = Type.String({ pattern: '^[0-9]{3} ?[0-9]{3}$' });
const RecoveryCode = Type.String({ minLength: 16, maxLength: 64 });
const MfaLoginBody = Type.Object({ mfaToken: MfaToken, code: Type.Optional(TotpCode), recoveryCode: Type.Optional(RecoveryCode) }, closed);
const MfaEnrolLoginBody = Type.Object({ mfaToken: MfaToken }, closed);
const MfaConfirmLoginBody = Type.Object({ mfaToken: MfaToken, code: TotpCode }, closed);
const MfaEnrolBody = Type.Object({ currentPassword: Password }, closed);
const MfaConfirmBody = Type.Object({ code: TotpCode }, closed);
const MfaReauthBody = Type.Object({ currentPassword: Password, code: Type.Optional(TotpCode), recoveryCode: Type.Optional(RecoveryCode) }, closed);

/** Browser mode's cookies (`__Host-`: Secure, path /, no Domain; the proxy never forwards them). */
const REFRESH_COOKIE = '__Host-rampart-refresh';
const CSRF_COOKIE = '__Host-rampart-csrf';

/** The most invitations may live. */
const MAX_INVITE_MS = 30 * 86_400_000;

/**
 * The identity service's routes, as ordinary routes of the gateway: the authentication endpoints
 * are public (with their own per-IP limits), everything else takes an access token of this service
 * (`jwt: { identity: true }`) and decides ownership and roles itself.
 */
export function identityRoutes(config: IdentityConfig, service: IdentityService | undefined): BuiltinRoute[] {
  const run = guarded(service);

  const metadata = JSON.stringify({
    issuer: config.issuer,
    jwks_uri: `${config.issuer}/.well-known/jwks.json`,
    // Only what exists (RFC 8414): no authorization endpoint (first-party login is not an OAuth grant).
    token_endpoint: `${config.issuer}/oauth/token`,
    revocation_endpoint: `${config.issuer}/oauth/revoke`,
    introspection_endpoint: `${config.issuer}/oauth/introspect`,
    response_types_supported: [],
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS, 'none'],
    revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    scopes_supported: [...new Set(Object.values(config.scopes).flat())],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'scope', 'roles', 'sid', 'amr'],
    access_token_signing_alg_values_supported: [config.tokens.algorithm],
  });
  const jwksMaxAge = Math.floor(parseDuration(config.keys.jwksMaxAge) / 1000);
  const browser = config.browser.refreshCookie;
  const origins = new Set([new URL(config.issuer).origin, ...config.browser.origins]);
  // The refresh token in the cookie lives at most the idle time (each refresh sets it again).
  const cookieMaxAge = Math.floor(parseDuration(config.tokens.refreshIdleTtl) / 1000);

  /** Token answers; in browser mode the refresh token goes in its cookie, with a fresh CSRF token. */
  const sendTokens = (reply: FastifyReply, tokens: TokenResponse): FastifyReply => {
    if (!browser) return sendJson(reply, 200, tokens);
    const csrf = randomSecret();
    reply.header('set-cookie', [
      serializeCookie(REFRESH_COOKIE, tokens.refresh_token, { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: cookieMaxAge }),
      serializeCookie(CSRF_COOKIE, csrf, { secure: true, sameSite: 'strict', path: '/', maxAge: cookieMaxAge }),
    ]);
    const { refresh_token: _cookie, ...rest } = tokens;
    return sendJson(reply, 200, { ...rest, csrf_token: csrf });
  };

  /** Browser mode: the refresh token from its cookie, with CSRF proof (double submit and Origin). */
  const cookieRefreshToken = (ctx: RequestContext): string => {
    const headers = ctx.request.raw.headers;
    const cookies = parseCookies(typeof headers.cookie === 'string' ? headers.cookie : '');
    const token = cookies[REFRESH_COOKIE];
    if (token === undefined || token === '') throw new RampartError('RMP_REFRESH_TOKEN_INVALID', { detail: 'No refresh cookie: log in again.' });
    const sent = headers['x-csrf-token'];
    const expected = cookies[CSRF_COOKIE];
    const origin = headers.origin;
    if (typeof sent !== 'string' || expected === undefined || expected === '' || !TokenHasher.equal(sent, expected) || (origin !== undefined && !origins.has(origin))) {
      throw new RampartError('RMP_CSRF_FAILED', { detail: 'Send the __Host-rampart-csrf cookie\'s value in X-CSRF-Token, from an allowed origin.' });
    }
    return token;
  };

  return [
    {
      route: route('identity-jwks', '/.well-known/jwks.json', ['GET'], false, true),
      handler: run((s, _ctx, reply) => {
        reply.code(200).header('content-type', 'application/jwk-set+json').header('cache-control', `public, max-age=${jwksMaxAge}`);
        return Promise.resolve(reply.send(s.keys.jwks));
      }),
    },
    {
      route: route('identity-metadata', '/.well-known/oauth-authorization-server', ['GET'], false, true),
      handler: (_ctx, reply) => {
        reply.code(200).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'public, max-age=3600');
        return Promise.resolve(reply.send(metadata));
      },
    },
    {
      route: route('identity-auth', '/api/v1/auth/:action', ['POST'], false),
      handler: run(async (s, ctx, reply) => {
        const client = clientOf(ctx);
        switch (ctx.params.action) {
          case 'register': {
            await limit(s.limits.register, ctx);
            const body = await readBody(ctx, RegisterBody);
            const result = await s.register(body, client);
            if (result.status === 202) return sendJson(reply, 202, { status: 'accepted', detail: 'If this e-mail address was not registered yet, its account is ready: log in with it.' });
            return sendJson(reply, 201, result.user);
          }
          case 'login': {
            await limit(s.limits.login, ctx);
            const body = await readBody(ctx, LoginBody);
            const result = await s.login(body, client);
            if ('passwordChangeToken' in result) {
              throw new RampartError('RMP_PASSWORD_CHANGE_REQUIRED', { detail: 'Set a new password with this token at POST /api/v1/auth/password.', extensions: { error: 'password_change_required', passwordChangeToken: result.passwordChangeToken, expiresIn: result.expiresIn } });
            }
            if ('mfaToken' in result) throw mfaChallenge(result);
            return sendTokens(reply, result);
          }
          case 'refresh': {
            await limit(s.limits.refresh, ctx);
            if (browser) {
              if (requestHasBody(ctx.request.raw.headers)) await readBody(ctx, NoQuery);
              return sendTokens(reply, await s.refresh(cookieRefreshToken(ctx), client));
            }
            const body = await readBody(ctx, RefreshBody);
            return sendTokens(reply, await s.refresh(body.refresh_token, client));
          }
          case 'password': {
            await limit(s.limits.login, ctx);
            const body = await readBody(ctx, PasswordChangeBody);
            const result = await s.completePasswordChange(body, client);
            if ('mfaToken' in result) throw mfaChallenge(result);
            return sendTokens(reply, result);
          }
          case 'mfa': {
            await limit(s.limits.login, ctx);
            const body = await readBody(ctx, MfaLoginBody);
            return sendTokens(reply, await s.completeMfaLogin({ mfaToken: body.mfaToken, ...secondFactor(body) }, client));
          }
          case 'mfa-enrol': {
            await limit(s.limits.login, ctx);
            const body = await readBody(ctx, MfaEnrolLoginBody);
            return sendJson(reply, 200, await s.enrolMfaAtLogin(body, client));
          }
          case 'mfa-enrol-confirm': {
            await limit(s.limits.login, ctx);
            const body = await readBody(ctx, MfaConfirmLoginBody);
            return sendTokens(reply, await s.confirmMfaAtLogin(body, client));
          }
          default:
            throw new RampartError('RMP_ROUTE_NOT_FOUND', { detail: 'No such authentication endpoint.' });
        }
      }),
    },
    {
      route: route('identity-logout', '/api/v1/auth/logout', ['POST'], true),
      handler: run(async (s, ctx, reply) => {
        const body = requestHasBody(ctx.request.raw.headers) ? await readBody(ctx, LogoutBody) : {};
        let refreshToken = body.refresh_token;
        if (browser) {
          const cookie = ctx.request.raw.headers.cookie;
          refreshToken ??= parseCookies(typeof cookie === 'string' ? cookie : '')[REFRESH_COOKIE];
          reply.header('set-cookie', [
            serializeCookie(REFRESH_COOKIE, '', { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: 0 }),
            serializeCookie(CSRF_COOKIE, '', { secure: true, sameSite: 'strict', path: '/', maxAge: 0 }),
          ]);
        }
        await s.logout(actorOf(ctx), clientOf(ctx), refreshToken);
        return reply.code(204).header('cache-control', 'no-store').send();
      }),
    },
    {
      route: route('identity-logout-all', '/api/v1/auth/logout-all', ['POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        await s.logoutAll(actor.id, actor.id, clientOf(ctx));
        return reply.code(204).header('cache-control', 'no-store').send();
      }),
    },
    ...userRoutes(run, usersV1, 'identity-users', 'identity-user'),
    ...userRoutes(run, usersV2, 'identity-users-v2', 'identity-user-v2'),
    {
      route: route('identity-user-password', '/api/v1/users/:id/password', ['PUT'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        const id = ctx.params.id === 'me' ? actor.id : ctx.params.id;
        // Only the owner, who knows the current password: admins reset instead.
        if (id !== actor.id) {
          denied(s, actor, ctx, 'password change for another user');
          throw notFound();
        }
        const body = await readBody(ctx, ChangePasswordBody);
        return sendTokens(reply, await s.changePassword(actor, body, clientOf(ctx)));
      }),
    },
    {
      route: route('identity-user-password-reset', '/api/v1/users/:id/password-reset', ['POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        const secret = await s.resetPassword(actor, ctx.params.id!, clientOf(ctx));
        if (secret === undefined) throw notFound();
        return sendJson(reply, 200, { oneTimePassword: secret, passwordChangeRequired: true });
      }),
    },
    {
      route: route('identity-sessions', '/api/v1/users/:id/sessions', ['GET', 'DELETE'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        // The owner lists theirs; an admin any user's. Ending them all is logout-all (admins: for anyone).
        const id = ownedTarget(s, actor, ctx);
        check(NoQuery, queryObject(ctx.query), '/query');
        if (ctx.request.method === 'GET') return sendJson(reply, 200, { items: await s.listSessions(id, actor.sid) });
        if ((await s.getUser(id)) === undefined) throw notFound();
        await s.logoutAll(id, actor.id, clientOf(ctx), actor.id === id ? 'logout_all' : 'ended_by_admin');
        return reply.code(204).header('cache-control', 'no-store').send();
      }),
    },
    {
      route: route('identity-session', '/api/v1/users/:id/sessions/:session', ['DELETE'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        const id = ownedTarget(s, actor, ctx);
        if (!(await s.endSession(actor, id, ctx.params.session!, clientOf(ctx)))) throw new RampartError('RMP_OBJECT_NOT_FOUND', { detail: 'No such session.' });
        return reply.code(204).header('cache-control', 'no-store').send();
      }),
    },
    {
      route: route('identity-user-mfa', '/api/v1/users/:id/mfa', ['GET', 'DELETE'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        check(NoQuery, queryObject(ctx.query), '/query');
        if (ctx.request.method === 'DELETE') {
          // A lost device: only an admin removes a second factor without one.
          requireAdmin(s, actor, ctx);
          if (!(await s.resetMfa(actor, ctx.params.id === 'me' ? actor.id : ctx.params.id!, clientOf(ctx)))) throw notFound();
          return reply.code(204).header('cache-control', 'no-store').send();
        }
        const id = ownedTarget(s, actor, ctx);
        if ((await s.getUser(id)) === undefined) throw notFound();
        return sendJson(reply, 200, await s.mfa.status(id));
      }),
    },
    {
      route: route('identity-user-mfa-action', '/api/v1/users/:id/mfa/:action', ['POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        const id = ctx.params.id === 'me' ? actor.id : ctx.params.id;
        // Only the owner, who has the password and the device: admins reset instead.
        if (id !== actor.id) {
          denied(s, actor, ctx, 'second factor of another user');
          throw notFound();
        }
        const client = clientOf(ctx);
        const who = { client, actor: actor.id };
        switch (ctx.params.action) {
          case 'enrol': {
            const body = await readBody(ctx, MfaEnrolBody);
            const user = await s.checkOwnPassword(actor, body.currentPassword, client);
            return sendJson(reply, 200, await s.mfa.enrol(actor.id, user.email, who));
          }
          case 'confirm': {
            const body = await readBody(ctx, MfaConfirmBody);
            return sendJson(reply, 200, { recoveryCodes: (await s.mfa.confirm(actor.id, body.code, who)).recoveryCodes });
          }
          case 'disable': {
            const body = await readBody(ctx, MfaReauthBody);
            const factor = secondFactor(body);
            await s.checkOwnPassword(actor, body.currentPassword, client);
            await s.mfa.disable(actor.id, factor, who);
            return reply.code(204).header('cache-control', 'no-store').send();
          }
          case 'recovery-codes': {
            const body = await readBody(ctx, MfaReauthBody);
            const factor = secondFactor(body);
            await s.checkOwnPassword(actor, body.currentPassword, client);
            return sendJson(reply, 200, { recoveryCodes: await s.mfa.replaceRecoveryCodes(actor.id, factor, who) });
          }
          default:
            throw new RampartError('RMP_ROUTE_NOT_FOUND', { detail: 'No such second-factor endpoint.' });
        }
      }),
    },
    {
      route: route('identity-invites', '/api/v1/invites', ['POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        const body = await readBody(ctx, InviteBody);
        const expiresInMs = body.expiresIn === undefined ? 7 * 86_400_000 : parseDuration(body.expiresIn);
        if (expiresInMs < 60_000 || expiresInMs > MAX_INVITE_MS) {
          throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: '/expiresIn', detail: 'must be between 1m and 30d' }] } });
        }
        return sendJson(reply, 201, await s.createInvite(actor, { email: body.email, roles: body.roles, expiresInMs }, clientOf(ctx)));
      }),
    },
    {
      route: route('identity-audit', '/api/v1/audit', ['GET'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        const q = check(AuditQuery, queryObject(ctx.query), '/query');
        return sendJson(reply, 200, await s.listAudit({ limit: Number(q.limit ?? 50), cursor: q.cursor === undefined ? undefined : Number(q.cursor), type: q.type, actor: q.actor, subject: q.subject, since: q.since, until: q.until }));
      }),
    },
    ...apiKeyRoutes(service),
    ...clientRoutes(service),
    ...oauthRoutes(config, service),
  ];
}

/**
 * The users collection and a user, in one version's representation: the same service calls and
 * the same authorization in every version (admins only for the collection; the owner or an admin
 * for a user; roles and status by admins only; one's own e-mail change re-authenticated).
 */
function userRoutes(run: ReturnType<typeof guarded>, view: UsersView, collection: string, item: string): BuiltinRoute[] {
  return [
    {
      route: { ...route(collection, view.base, ['GET', 'POST'], true), version: view.version },
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        if (ctx.request.method === 'GET') {
          const q = check(UsersQuery, queryObject(ctx.query), '/query');
          const page = await s.listUsers({ limit: Number(q.limit ?? 20), cursor: q.cursor, email: q.email, role: q.role, status: q.status });
          return sendJson(reply, 200, view.page(page, q));
        }
        check(NoQuery, queryObject(ctx.query), '/query');
        const body = await readBody(ctx, CreateUserBody);
        const created = await s.createUser(actor, body, clientOf(ctx));
        reply.header('location', `${view.base}/${created.user.id}`);
        const user = view.user(created.user) as Record<string, unknown>;
        return sendJson(reply, 201, created.oneTimePassword === undefined ? user : { ...user, oneTimePassword: created.oneTimePassword });
      }),
    },
    {
      route: { ...route(item, `${view.base}/:id`, ['GET', 'PATCH', 'DELETE'], true), version: view.version },
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        const id = ownedTarget(s, actor, ctx);
        const method = ctx.request.method;
        if (method === 'GET') {
          const user = await s.getUser(id);
          if (user === undefined) throw notFound();
          return sendJson(reply, 200, view.user(user));
        }
        if (method === 'DELETE') {
          if (!(await s.deleteUser(actor, id, clientOf(ctx)))) throw notFound();
          return reply.code(204).header('cache-control', 'no-store').send();
        }
        const body = view.patch(await readBody(ctx, view.patchBody));
        const adminOnly = body.adminOnly;
        if (adminOnly.length > 0 && !isAdmin(actor)) {
          denied(s, actor, ctx, `only admins may change ${adminOnly.join(', ')}`);
          throw new RampartError('RMP_AUTHZ_DENIED', { detail: `Only admins may change ${adminOnly.join(' and ')}.`, extensions: { fields: adminOnly } });
        }
        // Changing one's own sign-in address is re-authenticated (and a guess counts towards the lockout).
        if (body.email !== undefined && !isAdmin(actor)) {
          // Bounded per account: an answer (taken or not) is no oracle at scale.
          await limit(s.limits.register, ctx, `email-change:${actor.id}`);
          if (body.currentPassword === undefined) {
            throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: '/currentPassword', detail: 'is required to change the e-mail address' }] } });
          }
          await s.checkOwnPassword(actor, body.currentPassword, clientOf(ctx));
        }
        const user = await s.updateUser(actor, id, { email: body.email, roles: body.roles, status: body.status }, clientOf(ctx));
        if (user === undefined) throw notFound();
        return sendJson(reply, 200, view.user(user));
      }),
    },
  ];
}

/**
 * Object level: a user reaches only their own record (`me` or their id); an admin any. Someone
 * else's id answers 404, as for an id that does not exist, so ids cannot be probed.
 */
function ownedTarget(s: IdentityService, actor: Actor, ctx: RequestContext): string {
  const id = ctx.params.id === 'me' ? actor.id : ctx.params.id!;
  if (id === actor.id || isAdmin(actor)) return id;
  denied(s, actor, ctx, 'another user\'s record');
  throw notFound();
}

/** Login needs a second step: 403 with the MFA token (the same pattern as the password-change token). */
function mfaChallenge(challenge: MfaChallenge): RampartError {
  const extensions = { mfaToken: challenge.mfaToken, expiresIn: challenge.expiresIn };
  if (challenge.mfa === 'required') {
    return new RampartError('RMP_MFA_REQUIRED', { detail: 'Send a code from the authenticator app (or a recovery code) with this token to POST /api/v1/auth/mfa.', extensions: { error: 'mfa_required', ...extensions } });
  }
  return new RampartError('RMP_MFA_ENROLMENT_REQUIRED', {
    detail: 'This account must use a second factor: set up TOTP with this token at POST /api/v1/auth/mfa-enrol, then confirm a first code at POST /api/v1/auth/mfa-enrol-confirm.',
    extensions: { error: 'mfa_enrolment_required', ...extensions },
  });
}

/** Exactly one of `code` and `recoveryCode`. */
function secondFactor(body: { code?: string | undefined; recoveryCode?: string | undefined }): SecondFactor {
  if (body.code !== undefined && body.recoveryCode === undefined) return { code: body.code };
  if (body.recoveryCode !== undefined && body.code === undefined) return { recoveryCode: body.recoveryCode };
  throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: body.code === undefined ? '/code' : '/recoveryCode', detail: 'exactly one of code and recoveryCode is required' }] } });
}

function notFound(): RampartError {
  return new RampartError('RMP_OBJECT_NOT_FOUND', { detail: 'No such user.' });
}

