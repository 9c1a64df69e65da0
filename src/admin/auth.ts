import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { parse as parseCookie } from 'cookie';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import { RampartError } from '../errors/problem.js';
import type { IdentityRuntime } from '../identity/index.js';
import type { ClientInfo, TokenResponse, MfaChallenge } from '../identity/service.js';
import type { Events, SecurityEvent } from '../observability/events.js';
import type { Limiter } from '../ratelimit/limiter.js';

/**
 * Who may use the admin API, and how they prove it:
 *
 * - the admin token (`admin.token`) as `Authorization: Bearer …` — kept as a SHA-256 hash,
 *   compared in constant time;
 * - an access token of the identity service whose account has the admin role, as a bearer token
 *   (the CLI after a login);
 * - a console session: the `__Host-rampart-admin` cookie (HttpOnly, Secure, SameSite=Strict) made by a
 *   login with the identity service (admin role, and a second factor when the service requires
 *   one for that role) or with the admin token. A session made with a password holds that
 *   login's tokens and is checked against the identity service on every request (signature,
 *   revocation, refresh when the access token runs out), so logging out everywhere, disabling the
 *   account or removing the role ends it too. Changes through a session need its CSRF token.
 */

/** `__Host-`: Secure, Path=/, no Domain; and the gateway never forwards its own `__Host-rampart-` cookies upstream (cookies are not scoped by port). */
export const SESSION_COOKIE = '__Host-rampart-admin';
const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Sessions held at once; past it the least recently used one ends. */
const MAX_SESSIONS = 1000;
/** An access token is renewed this long before it runs out. */
const RENEW_MS = 30_000;

export interface AdminUser {
  id: string;
  email: string | null;
  roles: string[];
}

export interface AdminPrincipal {
  user: AdminUser;
  via: 'token' | 'access-token' | 'session';
  session: AdminSession | undefined;
  /** The identity access token, when `via` is `access-token` (re-checked by live streams). */
  bearer?: string;
}

interface IdentityTokens {
  access: string;
  refresh: string;
  /** Milliseconds since the epoch. */
  accessExp: number;
  jti: string;
  sid: string | undefined;
  iat: number;
}

export interface AdminSession {
  readonly key: string;
  readonly csrf: string;
  readonly user: AdminUser;
  readonly createdAt: number;
  readonly expiresAt: number;
  lastUsed: number;
  tokens: IdentityTokens | undefined;
  /** One refresh at a time. */
  renewing: Promise<void> | undefined;
  /** Called once when the session ends (logout, expiry, revocation): live streams close. */
  readonly onEnd: Set<() => void>;
}

export interface SessionView {
  user: AdminUser;
  csrfToken: string;
  expiresAt: string;
}

export interface AdminAuthOptions {
  token: string | undefined;
  identity: IdentityRuntime | undefined;
  role: string;
  ttlMs: number;
  idleMs: number;
  events: Events;
  logger: Logger;
  /** Counts login attempts per client address (the identity service's login limit when it runs). */
  loginLimiter: Limiter;
  now?: () => number;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export class AdminAuth {
  readonly #tokenHash: Buffer | undefined;
  readonly #identity: IdentityRuntime | undefined;
  readonly #role: string;
  readonly #ttlMs: number;
  readonly #idleMs: number;
  readonly #events: Events;
  readonly #logger: Logger;
  readonly #limiter: Limiter;
  readonly #now: () => number;
  /** By the SHA-256 of the cookie value (the value itself is kept nowhere). Map order = least recently used first. */
  readonly #sessions = new Map<string, AdminSession>();
  /** Whether the identity service wants a second factor of this role's accounts. */
  readonly #mfaRequired: boolean;

  constructor(options: AdminAuthOptions) {
    this.#tokenHash = options.token === undefined ? undefined : sha256(options.token);
    this.#identity = options.identity;
    this.#role = options.role;
    this.#ttlMs = options.ttlMs;
    this.#idleMs = options.idleMs;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#limiter = options.loginLimiter;
    this.#now = options.now ?? Date.now;
    this.#mfaRequired = options.identity?.config.mfa.requireForRoles.includes(options.role) ?? false;
  }

  /** The caller of an admin API request, or a RampartError (401/403). */
  async authenticate(request: FastifyRequest): Promise<AdminPrincipal> {
    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const bearer = BEARER.exec(authorization)?.[1];
      if (bearer === undefined) throw invalid('Send the admin token as Authorization: Bearer <token>.');
      return this.#bearer(bearer, request);
    }
    const cookie = sessionCookie(request.headers.cookie);
    if (cookie === undefined) {
      throw new RampartError('RMP_ADMIN_AUTH_REQUIRED', { headers: { 'www-authenticate': 'Bearer realm="rampart-admin"' }, detail: 'Log in to the console, or send the admin token as a bearer token.' });
    }
    const session = await this.#session(cookie);
    if (UNSAFE.has(request.method)) {
      const sent = request.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !equal(sent, session.csrf)) {
        this.#emit({ type: 'authz_fail', level: 'WARN', description: 'admin API change without the session\'s CSRF token', args: [session.user.id], actor: session.user.id, data: { reason: 'csrf' } }, request);
        throw new RampartError('RMP_ADMIN_CSRF', { detail: 'Send the session\'s CSRF token in X-CSRF-Token.' });
      }
    }
    return { user: session.user, via: 'session', session };
  }

  async #bearer(value: string, request: FastifyRequest): Promise<AdminPrincipal> {
    if (this.#tokenHash !== undefined && timingSafeEqual(sha256(value), this.#tokenHash)) {
      return { user: TOKEN_USER, via: 'token', session: undefined };
    }
    const identity = this.#identity;
    if (identity !== undefined && value.split('.').length === 3) {
      const claims = await identity.service.tokens.verifyAccess(value);
      if (claims !== undefined && !(await identity.service.revocation.isRevoked({ jti: claims.jti, sub: claims.sub, iat: claims.iat }))) {
        const user = { id: claims.sub!, email: null, roles: rolesOf(claims.roles) };
        this.#requireAdmin(user, claims.amr, request);
        return { user, via: 'access-token', session: undefined, bearer: value };
      }
    }
    // Guessing is limited like a login (and past the limit, no event is written for each try).
    const decision = await this.#limiter.consume(`ip:${request.ip}`);
    if (!decision.allowed) throw limited(decision.retryAfterMs);
    this.#emit({ type: 'authn_token_invalid', level: 'WARN', description: 'admin API: bearer token not accepted', data: { area: 'admin' } }, request);
    throw invalid('The token is not accepted.');
  }

  async #session(cookie: string): Promise<AdminSession> {
    const key = sha256(cookie).toString('hex');
    const session = this.#sessions.get(key);
    const now = this.#now();
    if (session === undefined) throw invalid('The console session is unknown or has ended: log in again.');
    if (now >= session.expiresAt || now - session.lastUsed >= this.#idleMs) {
      await this.#end(session);
      throw invalid('The console session has expired: log in again.');
    }
    if (session.tokens !== undefined) await this.#checkIdentity(session, now);
    session.lastUsed = now;
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    return session;
  }

  /**
   * For live streams, every few seconds: whether the credentials they were opened with still hold
   * — a session not logged out or expired (a stream counts as use, so idling is not checked), its
   * identity login not revoked; an access token not expired or revoked, its account still an
   * admin; the admin token is fixed for the process's life. A session that no longer holds is ended.
   */
  async stillValid(principal: AdminPrincipal): Promise<boolean> {
    const session = principal.session;
    if (principal.via === 'token') return true;
    if (principal.via === 'access-token') return principal.bearer !== undefined && (await this.#bearerStillValid(principal.bearer));
    if (session === undefined || !this.#sessions.has(session.key)) return false;
    const now = this.#now();
    if (now >= session.expiresAt) {
      await this.#end(session);
      return false;
    }
    if (session.tokens === undefined) return true;
    try {
      await this.#checkIdentity(session, now);
      return true;
    } catch {
      return false;
    }
  }

  async #bearerStillValid(token: string): Promise<boolean> {
    const service = this.#identity?.service;
    if (service === undefined) return false;
    const claims = await service.tokens.verifyAccess(token);
    if (claims === undefined || !rolesOf(claims.roles).includes(this.#role)) return false;
    return !(await service.revocation.isRevoked({ jti: claims.jti, sub: claims.sub, iat: claims.iat }));
  }

  /** The identity session behind a console session still holds: not revoked, renewed when due. */
  async #checkIdentity(session: AdminSession, now: number): Promise<void> {
    const service = this.#identity!.service;
    if (session.tokens!.accessExp - now < RENEW_MS) {
      session.renewing ??= (async () => {
        try {
          const renewed = await service.refresh(session.tokens!.refresh, { ip: '', userAgent: 'rampart-console', requestId: 'admin-session' });
          session.tokens = await this.#tokensOf(renewed);
        } catch {
          session.tokens = undefined;
        } finally {
          session.renewing = undefined;
        }
      })();
      await session.renewing;
      if (session.tokens === undefined) {
        this.#drop(session);
        throw invalid('The login behind this console session has ended: log in again.');
      }
    }
    const t = session.tokens!;
    const claims = await service.tokens.verifyAccess(t.access);
    const revoked = claims === undefined || (await service.revocation.isRevoked({ jti: t.jti, sub: session.user.id, iat: t.iat }));
    if (revoked || !rolesOf(claims.roles).includes(this.#role)) {
      this.#drop(session);
      throw invalid('The login behind this console session has ended: log in again.');
    }
  }

  async #tokensOf(response: TokenResponse): Promise<IdentityTokens> {
    const claims = decodeJwt(response.access_token);
    return {
      access: response.access_token,
      refresh: response.refresh_token,
      accessExp: (claims.exp ?? 0) * 1000,
      jti: String(claims.jti),
      sid: typeof claims.sid === 'string' ? claims.sid : undefined,
      iat: claims.iat ?? 0,
    };
  }

  #requireAdmin(user: AdminUser, amr: unknown, request: FastifyRequest): void {
    if (!user.roles.includes(this.#role)) {
      this.#emit({ type: 'authz_fail', level: 'WARN', description: 'admin API refused: the account is not an administrator', args: [user.id], actor: user.id, data: { reason: 'not_admin' } }, request);
      throw new RampartError('RMP_ADMIN_FORBIDDEN', { detail: `The account does not have the '${this.#role}' role.` });
    }
    if (this.#mfaRequired && !(Array.isArray(amr) && amr.includes('otp'))) {
      this.#emit({ type: 'authz_fail', level: 'WARN', description: 'admin API refused: the login used no second factor', args: [user.id], actor: user.id, data: { reason: 'mfa' } }, request);
      throw new RampartError('RMP_ADMIN_FORBIDDEN', { detail: 'Administrators must log in with a second factor.' });
    }
  }

  async #limit(request: FastifyRequest): Promise<void> {
    const decision = await this.#limiter.consume(`ip:${request.ip}`);
    if (!decision.allowed) throw limited(decision.retryAfterMs);
  }

  /** `POST /api/session` with `{ token }`. */
  async loginWithToken(token: string, request: FastifyRequest): Promise<{ cookie: string; view: SessionView }> {
    await this.#limit(request);
    if (this.#tokenHash === undefined || !timingSafeEqual(sha256(token), this.#tokenHash)) {
      this.#emit({ type: 'authn_login_fail', level: 'WARN', description: 'console login with a wrong admin token', data: { area: 'admin' } }, request);
      throw invalid('The admin token is not right.');
    }
    return this.#start(TOKEN_USER, undefined, request);
  }

  /** `POST /api/session` with `{ email, password }`; MFA and password-change answers come back as RampartErrors. */
  async loginWithPassword(email: string, password: string, request: FastifyRequest): Promise<{ cookie: string; view: SessionView }> {
    const service = this.#needIdentity();
    await this.#limit(request);
    let result: Awaited<ReturnType<typeof service.login>>;
    try {
      result = await service.login({ email, password }, clientOf(request));
    } catch (error) {
      if (error instanceof RampartError && error.code === 'RMP_LOGIN_FAILED') throw invalid(error.detail ?? 'The e-mail or password is not correct.');
      throw error;
    }
    if ('passwordChangeToken' in result) {
      throw new RampartError('RMP_PASSWORD_CHANGE_REQUIRED', { detail: 'The account has a one-time password: set a new one with this token at POST /api/session/password.', extensions: { passwordChangeToken: result.passwordChangeToken, expiresIn: result.expiresIn } });
    }
    return this.#fromLogin(result, request);
  }

  /** `POST /api/session/mfa` with `{ mfaToken, code | recoveryCode }`. */
  async loginWithMfa(input: { mfaToken: string; code?: string | undefined; recoveryCode?: string | undefined }, request: FastifyRequest): Promise<{ cookie: string; view: SessionView }> {
    const service = this.#needIdentity();
    await this.#limit(request);
    const second = input.recoveryCode !== undefined ? { recoveryCode: input.recoveryCode } : { code: input.code ?? '' };
    const result = await service.completeMfaLogin({ mfaToken: input.mfaToken, ...second }, clientOf(request));
    return this.#fromLogin(result, request);
  }

  /** `POST /api/session/password` with `{ passwordChangeToken, newPassword }` (first login with a one-time password). */
  async loginWithPasswordChange(input: { passwordChangeToken: string; newPassword: string }, request: FastifyRequest): Promise<{ cookie: string; view: SessionView }> {
    const service = this.#needIdentity();
    await this.#limit(request);
    const result = await service.completePasswordChange(input, clientOf(request));
    return this.#fromLogin(result, request);
  }

  async #fromLogin(result: TokenResponse | MfaChallenge, request: FastifyRequest): Promise<{ cookie: string; view: SessionView }> {
    if ('mfaToken' in result) {
      if (result.mfa === 'enrolment') {
        throw new RampartError('RMP_MFA_ENROLMENT_REQUIRED', { detail: 'Administrators must set up TOTP first (POST /api/v1/auth/mfa-enrol on the gateway), then log in here.', extensions: { mfaToken: result.mfaToken, expiresIn: result.expiresIn } });
      }
      throw new RampartError('RMP_MFA_REQUIRED', { detail: 'Send a code from the authenticator app (or a recovery code) with this token to POST /api/session/mfa.', extensions: { mfaToken: result.mfaToken, expiresIn: result.expiresIn } });
    }
    const tokens = await this.#tokensOf(result);
    const claims = decodeJwt(result.access_token);
    // The account's own e-mail (never one the caller typed).
    const account = await this.#identity!.service.getUser(String(claims.sub));
    const user: AdminUser = { id: String(claims.sub), email: account?.email ?? null, roles: rolesOf(claims.roles) };
    try {
      this.#requireAdmin(user, claims.amr, request);
    } catch (error) {
      // Not an administrator: the identity session this login made is ended at once.
      await this.#identity!.service.logout({ id: user.id, roles: user.roles, sid: tokens.sid, jti: tokens.jti, exp: tokens.accessExp / 1000 }, clientOf(request), tokens.refresh).catch(() => undefined);
      throw error;
    }
    return this.#start(user, tokens, request);
  }

  #start(user: AdminUser, tokens: IdentityTokens | undefined, request: FastifyRequest): { cookie: string; view: SessionView } {
    const cookie = randomBytes(32).toString('base64url');
    const key = sha256(cookie).toString('hex');
    const now = this.#now();
    const session: AdminSession = { key, csrf: randomBytes(32).toString('base64url'), user, createdAt: now, expiresAt: now + this.#ttlMs, lastUsed: now, tokens, renewing: undefined, onEnd: new Set() };
    this.#sweep(now);
    if (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.values().next().value;
      if (oldest !== undefined) void this.#end(oldest);
    }
    this.#sessions.set(key, session);
    this.#emit({ type: 'authn_login_success', level: 'INFO', description: `console login (${tokens === undefined ? 'admin token' : 'identity'})`, args: [user.id], actor: user.id, subject: user.id, data: { area: 'admin' } }, request);
    return { cookie, view: this.view(session) };
  }

  view(session: AdminSession): SessionView {
    return { user: session.user, csrfToken: session.csrf, expiresAt: new Date(session.expiresAt).toISOString() };
  }

  /** Ends a console session (and the identity session behind it). */
  async logout(principal: AdminPrincipal, request: FastifyRequest): Promise<void> {
    if (principal.session === undefined) return;
    await this.#end(principal.session, request);
    this.#emit({ type: 'authn_token_revoked', level: 'INFO', description: 'console logout', args: [principal.user.id], actor: principal.user.id, subject: principal.user.id, data: { area: 'admin' } }, request);
  }

  async #end(session: AdminSession, request?: FastifyRequest): Promise<void> {
    this.#drop(session);
    const t = session.tokens;
    session.tokens = undefined;
    if (t === undefined || this.#identity === undefined) return;
    const client = request === undefined ? { ip: '', userAgent: 'rampart-console', requestId: 'admin-session' } : clientOf(request);
    await this.#identity.service.logout({ id: session.user.id, roles: session.user.roles, sid: t.sid, jti: t.jti, exp: Math.floor(t.accessExp / 1000) }, client, t.refresh).catch((error: unknown) => {
      this.#logger.warn({ err: (error as Error).message }, 'console logout: the identity session could not be ended now; it ends when its tokens expire');
    });
  }

  /** Forgets a session and tells its live streams. */
  #drop(session: AdminSession): void {
    this.#sessions.delete(session.key);
    for (const end of session.onEnd) end();
    session.onEnd.clear();
  }

  #sweep(now: number): void {
    for (const s of this.#sessions.values()) {
      if (now >= s.expiresAt || now - s.lastUsed >= this.#idleMs) void this.#end(s);
    }
  }

  #needIdentity(): NonNullable<IdentityRuntime>['service'] {
    if (this.#identity === undefined) throw new RampartError('RMP_ADMIN_IDENTITY_DISABLED', { detail: 'This gateway runs no identity service: log in with the admin token.' });
    return this.#identity.service;
  }

  /** Security events of the admin API: the OWASP vocabulary, the admin listener's client address. */
  #emit(event: SecurityEvent, request: FastifyRequest): void {
    this.#events.emit({ ...event, requestId: request.id, clientIp: request.ip, route: 'admin' });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#sessions.values()].map((s) => this.#end(s)));
  }
}

const TOKEN_USER: AdminUser = Object.freeze({ id: 'admin-token', email: null, roles: ['admin'] }) as AdminUser;

function limited(retryAfterMs: number): RampartError {
  return new RampartError('RMP_RATE_LIMITED', { detail: 'Too many attempts from this address.', headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } });
}

function invalid(detail: string): RampartError {
  return new RampartError('RMP_ADMIN_AUTH_INVALID', { detail, headers: { 'www-authenticate': 'Bearer realm="rampart-admin", error="invalid_token"' } });
}

function rolesOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((r): r is string => typeof r === 'string') : [];
}

function equal(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export function clientOf(request: FastifyRequest): ClientInfo {
  const ua = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 300) : undefined, requestId: request.id };
}

/** The `__Host-rampart-admin` cookie's value from a Cookie header, if it has the shape of one. */
function sessionCookie(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = parseCookie(header)[SESSION_COOKIE];
  return value !== undefined && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}
