import { randomInt, randomUUID } from 'node:crypto';
import { PostgresAdapter, sql, type Kysely, type Selectable, type Transaction, type Updateable } from 'kysely';
import { RampartError } from '../errors/problem.js';
import type { Events, SecurityEvent } from '../observability/events.js';
import type { Revocation } from '../revocation/revocation.js';
import type { Database, UserTable } from '../storage/schema.js';
import type { Limiter } from '../ratelimit/limiter.js';
import { passwordProblem, type PasswordHasher } from './passwords.js';
import { randomSecret, TokenHasher, type AccessTokens, type IssuedAccess } from './tokens.js';
import type { SigningKeys } from './keys.js';
import type { AuditSink } from '../observability/audit-sink.js';
import { ApiKeys, type ApiKeySettings } from './api-keys.js';
import { OAuthClients, type ClientSettings } from './clients.js';
import { decodeCursor, encodeCursor, isUniqueViolation, iso, LOCKED_FOREVER, numInserted, parseList } from './rows.js';
import type { SecretKeys } from './secret-keys.js';
import type { Mfa, MfaMethod, SecondFactor } from './mfa.js';
import type { MfaPurpose, MfaTokenClaims } from './mfa-tokens.js';

/** The account changed while a session was being made for it: the transaction is rolled back. */
class StaleAccount extends Error {
  constructor() {
    super('the account changed while the session was being made');
  }
}

/** The largest `clockSkew` the jwt policy accepts (seconds): revocations outlive `exp` by it. */
const MAX_SKEW_S = 300;

/** RFC 8176 `amr` of a session: the password alone, or the password and a second factor (a TOTP or recovery code). */
const AMR_PASSWORD: readonly string[] = ['pwd'];
const AMR_MFA: readonly string[] = ['pwd', 'otp'];

export { LOCKED_FOREVER } from './rows.js';

export interface ClientInfo {
  ip: string;
  userAgent: string | undefined;
  requestId: string;
}

/** The authenticated caller, from a verified access token of this service. */
export interface Actor {
  id: string;
  roles: readonly string[];
  /** The session (refresh-token family) the token belongs to. */
  sid: string | undefined;
  jti: string | undefined;
  /** Seconds since the epoch. */
  exp: number | undefined;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
}

/** Login needs a second step: a code (`required`), or setting TOTP up first (`enrolment`: a role of the account requires it). */
export interface MfaChallenge {
  mfa: 'required' | 'enrolment';
  mfaToken: string;
  expiresIn: number;
}

export interface UserDto {
  id: string;
  email: string;
  roles: string[];
  status: 'active' | 'disabled' | 'locked';
  passwordChangeRequired: boolean;
  createdAt: string;
  updatedAt: string;
}

/** A login session as its owner or an admin sees it. */
export interface SessionDto {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  /** The session of the access token that asked. */
  current: boolean;
}

export interface IdentitySettings {
  registration: 'open' | 'invite' | 'off';
  minPasswordLength: number;
  /** Scopes by role. */
  scopes: Readonly<Record<string, readonly string[]>>;
  refreshIdleMs: number;
  refreshAbsoluteMs: number;
  reuseGraceMs: number;
  lockout: { threshold: number; baseMs: number; maxMs: number; permanentAfter: number };
}

export interface IdentityParts {
  db: Kysely<Database>;
  keys: SigningKeys;
  tokens: AccessTokens;
  hasher: TokenHasher;
  passwords: PasswordHasher;
  revocation: Revocation;
  events: Events;
  limits: { login: Limiter; register: Limiter; refresh: Limiter; clientAuth: Limiter; clientAuthIp: Limiter };
  settings: IdentitySettings;
  audit: AuditSink;
  secrets: SecretKeys;
  apiKeys: ApiKeySettings;
  clients: ClientSettings;
  mfa: Mfa;
}

type UserRow = Selectable<UserTable>;

const EMAIL = /^[^\s@"<>()[\]\\,;:]{1,64}@[^\s@"<>()[\]\\,;:]{1,253}\.[^\s@"<>()[\]\\,;:]{1,63}$/;

/**
 * The login workflow and the users API, over the repositories (Kysely). Routes are thin: they parse
 * and authorize the shape of a request; every rule about accounts, tokens and sessions is here.
 */
export class IdentityService {
  readonly db: Kysely<Database>;
  readonly keys: SigningKeys;
  readonly tokens: AccessTokens;
  readonly hasher: TokenHasher;
  readonly passwords: PasswordHasher;
  readonly revocation: Revocation;
  readonly settings: IdentitySettings;
  readonly #events: Events;
  readonly limits: IdentityParts['limits'];
  readonly audit: AuditSink;
  readonly secrets: SecretKeys;
  readonly apiKeys: ApiKeys;
  readonly clients: OAuthClients;
  readonly mfa: Mfa;

  constructor(parts: IdentityParts) {
    this.db = parts.db;
    this.keys = parts.keys;
    this.tokens = parts.tokens;
    this.hasher = parts.hasher;
    this.passwords = parts.passwords;
    this.revocation = parts.revocation;
    this.settings = parts.settings;
    this.#events = parts.events;
    this.limits = parts.limits;
    this.audit = parts.audit;
    this.secrets = parts.secrets;
    this.apiKeys = new ApiKeys({ db: parts.db, secrets: parts.secrets, revocation: parts.revocation, emit: (e, c) => this.emit(e, c), scopesOf: (roles) => this.scopesOf(roles), settings: parts.apiKeys });
    this.clients = new OAuthClients({ db: parts.db, secrets: parts.secrets, tokens: parts.tokens, revocation: parts.revocation, emit: (e, c) => this.emit(e, c), auditId: (v) => this.hasher.auditId(v), settings: parts.clients });
    this.mfa = parts.mfa;
  }

  // ── registration and login ───────────────────────────────────────────────────────────────

  /**
   * `open`: 202 and the same body whether the e-mail is new or not (an account is created only
   * when it is new; the password is hashed either way, so timing tells nothing). `invite`: a valid,
   * unused invitation is required, and it is spent.
   */
  async register(input: { email: string; password: string; invite?: string | undefined }, client: ClientInfo): Promise<{ status: 201 | 202; user?: UserDto }> {
    const mode = this.settings.registration;
    if (mode === 'off') throw new RampartError('RMP_REGISTRATION_CLOSED', { detail: 'Accounts are created by administrators.' });
    const email = normalizeEmail(input.email);
    this.#checkPassword(input.password, email);
    const hash = await this.passwords.hash(input.password);
    const now = Date.now();
    if (mode === 'invite') {
      if (input.invite === undefined) throw new RampartError('RMP_REGISTRATION_CLOSED', { detail: 'Registration needs an invitation.' });
      const inviteHash = this.hasher.hash(input.invite);
      const id = randomUUID();
      const created = await this.db.transaction().execute(async (trx) => {
        const invite = await trx.selectFrom('invites').selectAll().where('token_hash', '=', inviteHash).executeTakeFirst();
        if (invite === undefined || invite.used_at !== null || Date.parse(invite.expires_at) <= now || (invite.email !== null && invite.email !== email)) return undefined;
        const spent = await trx.updateTable('invites').set({ used_at: iso(now), used_by: id }).where('id', '=', invite.id).where('used_at', 'is', null).executeTakeFirst();
        if (Number(spent.numUpdatedRows) !== 1) return undefined;
        const inserted = await this.#insertUser(trx, { id, email, hash, roles: parseList(invite.roles), now, changeRequired: false });
        if (!inserted) throw new RampartError('RMP_USER_EXISTS');
        return invite.id;
      });
      if (created === undefined) throw new RampartError('RMP_REGISTRATION_CLOSED', { detail: 'The invitation is not valid.' });
      this.emit({ type: 'user_created', level: 'INFO', description: 'user registered with an invitation', actor: id, subject: id, args: [id], data: { invite: created } }, client);
      return { status: 201, user: toDto((await this.#user(id))!, now) };
    }
    const id = randomUUID();
    const inserted = await this.#insertUser(this.db, { id, email, hash, roles: ['user'], now, changeRequired: false });
    if (inserted) this.emit({ type: 'user_created', level: 'INFO', description: 'user registered', actor: id, subject: id, args: [id] }, client);
    return { status: 202 };
  }

  /**
   * Checks credentials. Unknown user, wrong password, locked and disabled accounts all end in the
   * same RMP_LOGIN_FAILED after the same Argon2 work (a dummy verification for an unknown user).
   */
  async login(input: { email: string; password: string }, client: ClientInfo): Promise<TokenResponse | { passwordChangeToken: string; expiresIn: number } | MfaChallenge> {
    const email = normalizeEmail(input.email, false);
    const user = email === undefined ? undefined : await this.#userByEmail(email);
    const failed = () => new RampartError('RMP_LOGIN_FAILED', { detail: 'The e-mail or password is not correct, or the account cannot log in right now.' });
    if (user === undefined) {
      await this.passwords.verify(undefined, input.password);
      this.emit({ type: 'authn_login_fail', level: 'WARN', description: 'login failed: no such account', data: { reason: 'unknown_user' } }, client);
      throw failed();
    }
    const attempt = await this.#attempt(user, input.password, client);
    if (!attempt.ok) throw failed();
    let fresh = attempt.user;
    const now = attempt.now;
    // A one-time password is about to be replaced: no upgrade (it would void the change token).
    if (attempt.rehash && fresh.password_change_required !== 1) {
      const upgraded = await this.passwords.hash(input.password);
      const done = await this.db.updateTable('users').set({ password_hash: upgraded }).where('id', '=', fresh.id).where('password_hash', '=', fresh.password_hash).executeTakeFirst();
      // The password changed meanwhile: this login is for a password that no longer exists.
      if (Number(done.numUpdatedRows) !== 1) throw failed();
      fresh = { ...fresh, password_hash: upgraded };
    }
    if (fresh.password_change_required === 1) {
      const change = await this.tokens.issuePasswordChange(fresh.id, this.hasher.auditId(fresh.password_hash), now);
      this.emit({ type: 'authn_login_success', level: 'INFO', description: 'login with a one-time password: password change required', args: [fresh.id], actor: fresh.id, subject: fresh.id, data: { passwordChangeRequired: true } }, client);
      return { passwordChangeToken: change.token, expiresIn: change.exp - Math.floor(now / 1000) };
    }
    const second = await this.#mfaPurpose(fresh);
    if (second !== undefined) return this.#mfaChallenge(fresh, second, fresh.password_hash, client, now);
    const session = await this.#unlessStale(this.db.transaction().execute((trx) => this.#createSession(trx, fresh.id, fresh.password_hash, client, now)));
    if (session === undefined) throw failed();
    this.emit({ type: 'authn_login_success', level: 'INFO', description: 'login', args: [fresh.id], actor: fresh.id, subject: fresh.id }, client);
    return this.#sessionStarted(session, client);
  }

  /**
   * Rotates a refresh token with one conditional update: of many concurrent uses exactly one wins.
   * A token already used is reuse: in strict mode (no grace) the whole family is revoked, successor
   * and access tokens included; within the grace window, the winner's successor is given again.
   */
  async refresh(refreshToken: string, client: ClientInfo): Promise<TokenResponse> {
    const hash = this.hasher.hash(refreshToken);
    const now = Date.now();
    const invalid = (detail = 'The refresh token is not valid; log in again.') => new RampartError('RMP_REFRESH_TOKEN_INVALID', { detail });
    const successorRaw = this.hasher.successor(refreshToken);
    // One transaction from the look-up to the new access token's record: if anything fails, the
    // refresh token is not spent (regression test refresh-spent-on-store-error).
    const outcome = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('refresh_tokens as t')
        .innerJoin('refresh_families as f', 'f.id', 't.family_id')
        .select(['t.id', 't.family_id', 't.user_id', 't.expires_at', 't.used_at', 't.revoked_at', 'f.expires_at as family_expires_at', 'f.revoked_at as family_revoked_at', 'f.created_at as family_created_at', 'f.amr as family_amr'])
        .where('t.token_hash', '=', hash)
        .executeTakeFirst();
      if (row === undefined) return { kind: 'unknown' as const };
      if (row.family_revoked_at !== null || row.revoked_at !== null) return { kind: 'revoked' as const, row };
      if (Date.parse(row.expires_at) <= now || Date.parse(row.family_expires_at) <= now) return { kind: 'expired' as const, row };
      const user = (await trx.selectFrom('users').selectAll().where('id', '=', row.user_id).executeTakeFirst()) as UserRow | undefined;
      // A session older than the user's not-before time (password change, role change, logout
      // everywhere) ends here, even if it was created while that change was being made.
      if (user === undefined || user.disabled_at !== null || (user.tokens_not_before !== null && row.family_created_at < user.tokens_not_before)) {
        await trx.updateTable('refresh_families').set({ revoked_at: iso(now), revoked_reason: 'stale' }).where('id', '=', row.family_id).where('revoked_at', 'is', null).execute();
        return { kind: 'revoked' as const, row };
      }
      const won = row.used_at === null && Number((await trx.updateTable('refresh_tokens').set({ used_at: iso(now) }).where('id', '=', row.id).where('used_at', 'is', null).executeTakeFirst()).numUpdatedRows) === 1;
      if (!won) {
        // Someone used it first. Within the grace window, the same successor (if still unused).
        const used = await trx.selectFrom('refresh_tokens').select('used_at').where('id', '=', row.id).executeTakeFirst();
        const usedAt = used?.used_at == null ? now : Date.parse(used.used_at);
        if (this.settings.reuseGraceMs > 0 && now - usedAt <= this.settings.reuseGraceMs) {
          const successor = await trx.selectFrom('refresh_tokens').select(['id', 'used_at', 'revoked_at']).where('token_hash', '=', this.hasher.hash(successorRaw)).executeTakeFirst();
          if (successor !== undefined && successor.used_at === null && successor.revoked_at === null) {
            return { kind: 'grace' as const, row, user, access: await this.#issueAccess(trx, user, row.family_id, now, parseAmr(row.family_amr)) };
          }
        }
        await trx.updateTable('refresh_families').set({ revoked_at: iso(now), revoked_reason: 'reuse' }).where('id', '=', row.family_id).where('revoked_at', 'is', null).execute();
        return { kind: 'reuse' as const, row };
      }
      const expires = Math.min(now + this.settings.refreshIdleMs, Date.parse(row.family_expires_at));
      await trx
        .insertInto('refresh_tokens')
        .values({ id: randomUUID(), family_id: row.family_id, user_id: row.user_id, token_hash: this.hasher.hash(successorRaw), issued_at: iso(now), expires_at: iso(expires), used_at: null, revoked_at: null, parent_id: row.id })
        .execute();
      await trx.updateTable('refresh_families').set({ last_used_at: iso(now) }).where('id', '=', row.family_id).execute();
      return { kind: 'rotated' as const, row, user, access: await this.#issueAccess(trx, user, row.family_id, now, parseAmr(row.family_amr)) };
    });
    if (outcome.kind === 'unknown') {
      this.emit({ type: 'authn_token_invalid', level: 'WARN', description: 'refresh with an unknown token', data: { token: this.hasher.auditId(refreshToken) } }, client);
      throw invalid();
    }
    const { row } = outcome;
    if (outcome.kind === 'reuse') {
      await this.#revokeFamilies([row.family_id], 'reuse', now);
      this.emit({ type: 'authn_token_reuse', level: 'CRITICAL', description: 'a spent refresh token was used again: the session is revoked', args: [row.user_id], subject: row.user_id, data: { session: row.family_id, token: this.hasher.auditId(refreshToken) } }, client);
      throw invalid('The refresh token was already used; the session has been ended. Log in again.');
    }
    if (outcome.kind === 'revoked') await this.#revokeFamilies([row.family_id], 'stale', now);
    if (outcome.kind !== 'rotated' && outcome.kind !== 'grace') throw invalid();
    const { user, access } = outcome;
    // The session may have been ended while this refresh ran (a logout, a concurrent reuse): then
    // the token just made is denylisted too (regression test logout-misses-refresh-in-flight). The
    // answer still carries the successor — dead on arrival, as strict reuse detection promises.
    if (await this.#sessionEnded(row.family_id)) await this.#denyAccess(access.jti, access.exp);
    if (outcome.kind === 'grace') this.emit({ type: 'authn_token_refresh_grace', level: 'INFO', description: 'concurrent refresh within the grace window: same successor', args: [row.user_id], actor: row.user_id, subject: row.user_id, data: { session: row.family_id } }, client);
    this.emit({ type: 'authn_token_created', level: 'INFO', description: 'tokens refreshed', args: [row.user_id], actor: row.user_id, subject: row.user_id, data: { session: row.family_id, jti: this.hasher.auditId(access.jti) } }, client);
    return this.#tokenResponse(access, successorRaw, user);
  }

  /** Ends the caller's session: its refresh tokens and every access token it issued, this one included. */
  async logout(actor: Actor, client: ClientInfo, refreshToken?: string): Promise<void> {
    const families = new Set<string>();
    if (actor.sid !== undefined) families.add(actor.sid);
    if (refreshToken !== undefined) {
      const row = await this.db.selectFrom('refresh_tokens').select(['family_id', 'user_id']).where('token_hash', '=', this.hasher.hash(refreshToken)).executeTakeFirst();
      if (row !== undefined && row.user_id === actor.id) families.add(row.family_id);
    }
    await this.#revokeFamilies([...families], 'logout', Date.now());
    if (actor.jti !== undefined && actor.exp !== undefined) await this.#denyAccess(actor.jti, actor.exp);
    this.emit({ type: 'authn_token_revoked', level: 'INFO', description: 'logout', args: [actor.id], actor: actor.id, subject: actor.id, data: { sessions: families.size } }, client);
  }

  /**
   * A refresh token as introspection (RFC 7662) and revocation (RFC 7009) see it: undefined when
   * unknown; `active` only while it could still be used (unspent, unrevoked, unexpired, its
   * session live and newer than the user's not-before time, the account enabled).
   */
  async refreshTokenInfo(refreshToken: string, now = Date.now()): Promise<{ family: string; userId: string; clientId: string; active: boolean; sessionLive: boolean; exp: number; iat: number; scope: string } | undefined> {
    const row = await this.db
      .selectFrom('refresh_tokens as t')
      .innerJoin('refresh_families as f', 'f.id', 't.family_id')
      .innerJoin('users as u', 'u.id', 't.user_id')
      .select(['t.family_id', 't.user_id', 't.issued_at', 't.expires_at', 't.used_at', 't.revoked_at', 'f.client_id', 'f.created_at as family_created_at', 'f.expires_at as family_expires_at', 'f.revoked_at as family_revoked_at', 'u.roles', 'u.disabled_at', 'u.tokens_not_before'])
      .where('t.token_hash', '=', this.hasher.hash(refreshToken))
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const exp = Math.min(Date.parse(row.expires_at), Date.parse(row.family_expires_at));
    const active =
      row.used_at === null && row.revoked_at === null && row.family_revoked_at === null && exp > now && row.disabled_at === null && (row.tokens_not_before === null || row.family_created_at >= row.tokens_not_before);
    const sessionLive = row.family_revoked_at === null && Date.parse(row.family_expires_at) > now;
    return { family: row.family_id, userId: row.user_id, clientId: row.client_id, active, sessionLive, exp: Math.floor(exp / 1000), iat: Math.floor(Date.parse(row.issued_at) / 1000), scope: this.#scopes(parseList(row.roles)) };
  }

  /** Ends a session given by one of its refresh tokens (RFC 7009 §2.1: its access tokens too). */
  async revokeSession(family: string, userId: string, actorId: string, client: ClientInfo): Promise<void> {
    await this.#revokeFamilies([family], 'revoked', Date.now());
    this.emit({ type: 'authn_token_revoked', level: 'INFO', description: 'session revoked at the revocation endpoint', args: [userId], actor: actorId, subject: userId, data: { kind: 'refresh_token', session: family } }, client);
  }

  /** Denylists one access token until it expires (RFC 7009), on every gateway sharing the revocation store. */
  async revokeAccessToken(jti: string, exp: number, subject: string, actorId: string, client: ClientInfo): Promise<void> {
    await this.#denyAccess(jti, exp);
    this.emit({ type: 'authn_token_revoked', level: 'INFO', description: 'access token revoked at the revocation endpoint', args: [subject], actor: actorId, subject, data: { kind: 'access_token', jti: this.hasher.auditId(jti) } }, client);
  }

  /** Ends every session of the caller (or of a user, for an admin). */
  async logoutAll(userId: string, actorId: string, client: ClientInfo, reason = 'logout_all'): Promise<void> {
    await this.#endAllSessions(userId, reason, Date.now());
    this.emit({ type: 'authn_token_revoked', level: 'INFO', description: `every session ended (${reason})`, args: [userId], actor: actorId, subject: userId, data: { reason } }, client);
  }

  /** A user's live sessions (login sessions: refresh-token families), newest first. */
  async listSessions(userId: string, currentSid: string | undefined): Promise<SessionDto[]> {
    const now = iso(Date.now());
    const rows = await this.db
      .selectFrom('refresh_families')
      .select(['id', 'created_at', 'last_used_at', 'expires_at', 'client_ip', 'user_agent'])
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .limit(100)
      .execute();
    return rows.map((r) => ({ id: r.id, createdAt: r.created_at, lastUsedAt: r.last_used_at, expiresAt: r.expires_at, ip: r.client_ip, userAgent: r.user_agent, current: r.id === currentSid }));
  }

  /** Ends one session of the user (its refresh tokens and live access tokens); false when it is not theirs or not live. */
  async endSession(actor: Actor, userId: string, sessionId: string, client: ClientInfo): Promise<boolean> {
    const row = await this.db.selectFrom('refresh_families').select('id').where('id', '=', sessionId).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
    if (row === undefined) return false;
    await this.#revokeFamilies([row.id], actor.id === userId ? 'ended_by_user' : 'ended_by_admin', Date.now());
    this.emit({ type: 'authn_token_revoked', level: 'INFO', description: 'session ended', args: [userId], actor: actor.id, subject: userId, data: { session: row.id } }, client);
    return true;
  }

  /** Sets a new password with the token login gave for a one-time password; then logs in (or asks for the second factor). */
  async completePasswordChange(input: { passwordChangeToken: string; newPassword: string }, client: ClientInfo): Promise<TokenResponse | MfaChallenge> {
    const claims = await this.tokens.verifyPasswordChange(input.passwordChangeToken);
    const refused = new RampartError('RMP_AUTH_TOKEN_INVALID', { detail: 'The password-change token is not valid; log in again with the one-time password.' });
    if (claims === undefined) throw refused;
    const user = await this.#user(claims.sub);
    if (user === undefined || user.disabled_at !== null || user.password_change_required !== 1 || !TokenHasher.equal(claims.binding, this.hasher.auditId(user.password_hash))) throw refused;
    this.#checkPassword(input.newPassword, user.email);
    // Hashed first (it may be shed with 503), then the token is spent: single use, a second use conflicts.
    const hash = await this.passwords.hash(input.newPassword);
    const now = Date.now();
    // With a second factor on (or required), the new password is set but no session starts yet.
    const second = await this.#mfaPurpose(user);
    // Spending the token, the new password and the session: all or nothing. The token is bound to
    // the one-time password it was given for (a reset since then voids it).
    const session = await this.#unlessStale(this.db.transaction().execute(async (trx) => {
      const spent = await trx.insertInto('revoked_tokens').values({ jti: `pwc:${claims.jti}`, expires_at: iso(claims.exp * 1000) }).onConflict((oc) => oc.column('jti').doNothing()).executeTakeFirst();
      if (numInserted(spent) !== 1) return undefined;
      const changed = await trx
        .updateTable('users')
        .set({ password_hash: hash, password_change_required: 0, updated_at: iso(now) })
        .where('id', '=', user.id)
        .where('password_change_required', '=', 1)
        .where('disabled_at', 'is', null)
        .where('password_hash', '=', user.password_hash)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) !== 1) return undefined;
      return second !== undefined ? ('second factor' as const) : this.#createSession(trx, user.id, hash, client, now);
    }));
    if (session === undefined) throw refused;
    this.emit({ type: 'user_password_changed', level: 'INFO', description: 'one-time password replaced', args: [user.id], actor: user.id, subject: user.id }, client);
    if (session === 'second factor') return this.#mfaChallenge(user, second!, hash, client, now);
    return this.#sessionStarted(session, client);
  }

  // ── second factor (TOTP) during login ───────────────────────────────────────────────────

  /**
   * Login's second step: the MFA token and a TOTP or recovery code. The code is used up, the token
   * spent and the session (`amr: ["pwd","otp"]`) made in one transaction.
   */
  async completeMfaLogin(input: { mfaToken: string } & SecondFactor, client: ClientInfo): Promise<TokenResponse> {
    const { user, claims } = await this.#mfaLogin(input.mfaToken, 'mfa');
    const now = Date.now();
    const factor: SecondFactor = input.recoveryCode !== undefined ? { recoveryCode: input.recoveryCode } : { code: input.code };
    const done = await this.#unlessStale(this.mfa.verify(user.id, factor, { client, now }, (trx) => this.#mfaSession(trx, claims, user, client, now)));
    if (done?.result === undefined) throw mfaTokenRefused();
    return this.#mfaLoggedIn(done.result, done.method, client);
  }

  /** With an enrolment token: a new pending TOTP secret for the account (shown once). */
  async enrolMfaAtLogin(input: { mfaToken: string }, client: ClientInfo): Promise<{ secret: string; otpauthUri: string; qrCode: string }> {
    const { user } = await this.#mfaLogin(input.mfaToken, 'mfa-enrol');
    return this.mfa.enrol(user.id, user.email, { client, actor: user.id });
  }

  /** With an enrolment token and a first code: TOTP on, recovery codes (shown once) and the session, all or nothing. */
  async confirmMfaAtLogin(input: { mfaToken: string; code: string }, client: ClientInfo): Promise<TokenResponse & { recoveryCodes: string[] }> {
    const { user, claims } = await this.#mfaLogin(input.mfaToken, 'mfa-enrol');
    const now = Date.now();
    const done = await this.#unlessStale(this.mfa.confirm(user.id, input.code, { client, actor: user.id, now }, (trx) => this.#mfaSession(trx, claims, user, client, now)));
    if (done?.result === undefined) throw mfaTokenRefused();
    return { ...this.#mfaLoggedIn(done.result, 'totp', client), recoveryCodes: done.recoveryCodes };
  }

  /** Admin: removes a user's second factor (a lost device) and ends every session of theirs; false when the user does not exist. */
  async resetMfa(actor: Actor, id: string, client: ClientInfo): Promise<boolean> {
    if ((await this.#user(id)) === undefined) return false;
    await this.mfa.reset(id, { client, actor: actor.id });
    await this.logoutAll(id, actor.id, client, 'mfa_reset');
    return true;
  }

  /** The second step a login needs, if any: a code when TOTP is on, an enrolment when a role of the account requires one. */
  async #mfaPurpose(user: UserRow): Promise<MfaPurpose | undefined> {
    if ((await this.mfa.state(user.id)) === 'on') return 'mfa';
    return this.mfa.requiredFor(parseList(user.roles)) ? 'mfa-enrol' : undefined;
  }

  /** The MFA token (5 minutes, bound to the password hash the login was for) instead of a session. */
  async #mfaChallenge(user: UserRow, purpose: MfaPurpose, passwordHash: string, client: ClientInfo, now: number): Promise<MfaChallenge> {
    const issued = await this.mfa.tokens.issue(user.id, purpose, this.hasher.auditId(passwordHash), now);
    const enrolment = purpose === 'mfa-enrol';
    this.emit({ type: 'authn_mfa_required', level: 'INFO', description: enrolment ? 'password accepted; TOTP enrolment required' : 'password accepted; second factor required', args: [user.id], actor: user.id, subject: user.id, data: { enrolment } }, client);
    return { mfa: enrolment ? 'enrolment' : 'required', mfaToken: issued.token, expiresIn: issued.exp - Math.floor(now / 1000) };
  }

  /** The account an MFA token was issued for, if the token is valid, unspent and the account unchanged (same password, not disabled). */
  async #mfaLogin(token: string, purpose: MfaPurpose): Promise<{ user: UserRow; claims: MfaTokenClaims }> {
    const claims = await this.mfa.tokens.verify(token, purpose);
    if (claims === undefined) throw mfaTokenRefused();
    const user = await this.#user(claims.sub);
    if (user === undefined || user.disabled_at !== null || user.password_change_required === 1 || !TokenHasher.equal(claims.binding, this.hasher.auditId(user.password_hash))) throw mfaTokenRefused();
    // Spent already: refused before any code is looked at (or counted).
    const spent = await this.db.selectFrom('revoked_tokens').select('jti').where('jti', '=', `mfa:${claims.jti}`).executeTakeFirst();
    if (spent !== undefined) throw mfaTokenRefused();
    return { user, claims };
  }

  /** In the transaction that accepts the code: the MFA token is spent (once) and the session made. */
  async #mfaSession(trx: Transaction<Database>, claims: MfaTokenClaims, user: UserRow, client: ClientInfo, now: number): Promise<{ user: UserRow; family: string; refresh: string; access: IssuedAccess }> {
    const spent = await trx.insertInto('revoked_tokens').values({ jti: `mfa:${claims.jti}`, expires_at: iso(claims.exp * 1000) }).onConflict((oc) => oc.column('jti').doNothing()).executeTakeFirst();
    // Used by a concurrent request: roll back (the code is not used up) and refuse.
    if (numInserted(spent) !== 1) throw new StaleAccount();
    return this.#createSession(trx, user.id, user.password_hash, client, now, AMR_MFA);
  }

  #mfaLoggedIn(session: { user: UserRow; family: string; refresh: string; access: IssuedAccess }, method: MfaMethod, client: ClientInfo): TokenResponse {
    const id = session.user.id;
    this.emit({ type: 'authn_login_success', level: 'INFO', description: `login with a second factor (${method === 'totp' ? 'TOTP code' : 'recovery code'})`, args: [id], actor: id, subject: id, data: { mfa: method } }, client);
    return this.#sessionStarted(session, client);
  }

  // ── users API ────────────────────────────────────────────────────────────────────────────

  async listUsers(query: { limit: number; cursor?: string | undefined; email?: string | undefined; role?: string | undefined; status?: string | undefined }): Promise<{ items: UserDto[]; nextCursor: string | null }> {
    let q = this.db.selectFrom('users').selectAll().orderBy('created_at', 'asc').orderBy('id', 'asc').limit(query.limit + 1);
    if (query.cursor !== undefined) {
      const [createdAt, id] = decodeCursor(query.cursor);
      q = q.where((eb) => eb.or([eb('created_at', '>', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '>', id)])]));
    }
    // LIKE with an explicit escape character: SQLite has none by default (regression test in identity-users).
    if (query.email !== undefined) q = q.where(sql<boolean>`email like ${`%${likeEscape(query.email.toLowerCase())}%`} escape '\\'`);
    // Roles are a JSON list of names: match the quoted name, in SQL, so pages stay whole.
    if (query.role !== undefined) q = q.where(sql<boolean>`roles like ${`%${likeEscape(JSON.stringify(query.role))}%`} escape '\\'`);
    if (query.status === 'disabled') q = q.where('disabled_at', 'is not', null);
    if (query.status === 'active') q = q.where('disabled_at', 'is', null).where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', iso(Date.now()))]));
    if (query.status === 'locked') q = q.where('disabled_at', 'is', null).where('locked_until', '>', iso(Date.now()));
    const rows = await q.execute();
    const now = Date.now();
    const page = rows.slice(0, query.limit);
    const last = rows.length > query.limit ? page[page.length - 1] : undefined;
    return { items: page.map((r) => toDto(r, now)), nextCursor: last === undefined ? null : encodeCursor(last.created_at, last.id) };
  }

  /** Admin: creates a user; without a password, a one-time password is generated and shown once. */
  async createUser(actor: Actor, input: { email: string; roles?: string[] | undefined; password?: string | undefined }, client: ClientInfo): Promise<{ user: UserDto; oneTimePassword?: string }> {
    const email = normalizeEmail(input.email);
    const oneTime = input.password === undefined ? oneTimePassword() : undefined;
    const password = input.password ?? oneTime!;
    if (input.password !== undefined) this.#checkPassword(input.password, email);
    const hash = await this.passwords.hash(password);
    const id = randomUUID();
    const now = Date.now();
    const roles = input.roles ?? ['user'];
    if (!(await this.#insertUser(this.db, { id, email, hash, roles, now, changeRequired: oneTime !== undefined }))) throw new RampartError('RMP_USER_EXISTS');
    this.emit({ type: 'user_created', level: 'INFO', description: 'user created by an admin', args: [id], actor: actor.id, subject: id, data: { roles: roles.join(' ') } }, client);
    const user = toDto((await this.#user(id))!, now);
    return oneTime === undefined ? { user } : { user, oneTimePassword: oneTime };
  }

  async getUser(id: string): Promise<UserDto | undefined> {
    const row = await this.#user(id);
    return row === undefined ? undefined : toDto(row, Date.now());
  }

  /** Applies a checked patch (the route has refused unknown fields and non-admin writes of roles/status). */
  async updateUser(actor: Actor, id: string, patch: { email?: string | undefined; roles?: string[] | undefined; status?: 'active' | 'disabled' | undefined }, client: ClientInfo): Promise<UserDto | undefined> {
    const user = await this.#user(id);
    if (user === undefined) return undefined;
    const losesAdmin = parseList(user.roles).includes('admin') && ((patch.roles !== undefined && !patch.roles.includes('admin')) || patch.status === 'disabled');
    const now = Date.now();
    const set: Updateable<UserTable> = { updated_at: iso(now) };
    const changed: string[] = [];
    if (patch.email !== undefined) {
      set.email = normalizeEmail(patch.email);
      changed.push('email');
    }
    if (patch.roles !== undefined) {
      set.roles = JSON.stringify([...new Set(patch.roles)]);
      changed.push('roles');
    }
    let endSessions = false;
    if (patch.status === 'disabled' && user.disabled_at === null) {
      set.disabled_at = iso(now);
      endSessions = true;
      changed.push('status');
    } else if (patch.status === 'active') {
      set.disabled_at = null;
      set.locked_until = null;
      set.failed_logins = 0;
      changed.push('status');
    }
    try {
      await this.db.transaction().execute(async (trx) => {
        if (losesAdmin) await this.#keepAnAdmin(trx, id);
        await trx.updateTable('users').set(set).where('id', '=', id).execute();
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new RampartError('RMP_USER_EXISTS');
      throw error;
    }
    // New roles must not ride on old tokens; a disabled user keeps none.
    if (endSessions || patch.roles !== undefined) await this.#endAllSessions(id, endSessions ? 'disabled' : 'roles_changed', now);
    // A disabled user's API keys stop at once (a role change cuts them down at their next look-up).
    if (endSessions) await this.apiKeys.revokeAllOf(id, actor.id, client, 'user_disabled');
    this.emit({ type: 'user_updated', level: 'INFO', description: `user updated: ${changed.join(', ') || 'nothing'}`, args: [id], actor: actor.id, subject: id, data: { fields: changed.join(' ') } }, client);
    return toDto((await this.#user(id))!, now);
  }

  /** Erases the user's personal data and sessions; the audit trail keeps ids only. */
  async deleteUser(actor: Actor, id: string, client: ClientInfo): Promise<boolean> {
    const now = Date.now();
    const target = await this.#user(id);
    if (target === undefined) return false;
    if (parseList(target.roles).includes('admin')) await this.db.transaction().execute((trx) => this.#keepAnAdmin(trx, id));
    await this.#endAllSessions(id, 'deleted', now);
    await this.apiKeys.revokeAllOf(id, actor.id, client, 'user_deleted');
    await this.db.deleteFrom('access_tokens').where('user_id', '=', id).execute();
    await this.db.transaction().execute(async (trx) => {
      // Checked again with the rows locked: two admins removing each other at once leave one.
      if (parseList(target.roles).includes('admin')) await this.#keepAnAdmin(trx, id);
      // Invitations addressed to them keep no trace of the address; unused ones die with them.
      await trx.updateTable('invites').set({ email: null, expires_at: iso(now) }).where('email', '=', target.email).where('used_at', 'is', null).execute();
      await trx.updateTable('invites').set({ email: null }).where('email', '=', target.email).execute();
      await trx.deleteFrom('users').where('id', '=', id).execute();
    });
    this.emit({ type: 'user_deleted', level: 'INFO', description: 'user deleted', args: [id], actor: actor.id, subject: id }, client);
    return true;
  }

  /** Re-authentication for a sensitive change: the current password, under the lockout rules. */
  async checkOwnPassword(actor: Actor, password: string, client: ClientInfo): Promise<UserRow> {
    const user = await this.#user(actor.id);
    if (user === undefined) throw new RampartError('RMP_OBJECT_NOT_FOUND');
    const attempt = await this.#attempt(user, password, client);
    if (!attempt.ok) throw new RampartError('RMP_PASSWORD_INCORRECT');
    return attempt.user;
  }

  /** The owner changes their password (current one required); every session ends, a new one starts. */
  async changePassword(actor: Actor, input: { currentPassword: string; newPassword: string }, client: ClientInfo): Promise<TokenResponse> {
    const user = await this.checkOwnPassword(actor, input.currentPassword, client);
    this.#checkPassword(input.newPassword, user.email);
    const hash = await this.passwords.hash(input.newPassword);
    // The new password, the end of every session and the new one: all or nothing (a 503 then means
    // nothing changed). Only over the password that was checked: a reset or another change since
    // wins (regression test password-change-undoes-reset). The time is taken inside, after the
    // hashing, so nothing issued before it survives.
    let now = 0;
    const session = await this.#unlessStale(this.db.transaction().execute(async (trx) => {
      now = Date.now();
      const changed = await trx
        .updateTable('users')
        .set({ password_hash: hash, updated_at: iso(now), failed_logins: 0, locked_until: null })
        .where('id', '=', user.id)
        .where('password_hash', '=', user.password_hash)
        .where('disabled_at', 'is', null)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) !== 1) return undefined;
      await this.#endAllSessionsIn(trx, user.id, 'password_changed', now);
      return this.#createSession(trx, user.id, hash, client, now + 1);
    }));
    if (session === undefined) throw new RampartError('RMP_PASSWORD_INCORRECT', { detail: 'The password changed meanwhile.' });
    await this.#publishNotBefore(user.id, now);
    this.emit({ type: 'user_password_changed', level: 'INFO', description: 'password changed; every other session ended', args: [user.id], actor: actor.id, subject: user.id }, client);
    return this.#sessionStarted(session, client);
  }

  /** Admin: a one-time password for the user (shown once); every session ends and the account is unlocked. */
  async resetPassword(actor: Actor, id: string, client: ClientInfo): Promise<string | undefined> {
    const user = await this.#user(id);
    if (user === undefined) return undefined;
    const secret = oneTimePassword();
    const hash = await this.passwords.hash(secret);
    let now = 0;
    await this.db.transaction().execute(async (trx) => {
      now = Date.now();
      await trx.updateTable('users').set({ password_hash: hash, password_change_required: 1, failed_logins: 0, locked_until: null, updated_at: iso(now) }).where('id', '=', id).execute();
      await this.#endAllSessionsIn(trx, id, 'password_reset', now);
    });
    await this.#publishNotBefore(id, now);
    this.emit({ type: 'user_password_reset', level: 'WARN', description: 'password reset by an admin; every session ended', args: [id], actor: actor.id, subject: id }, client);
    return secret;
  }

  /** Admin: a single-use invitation (shown once). */
  async createInvite(actor: Actor, input: { email?: string | undefined; roles?: string[] | undefined; expiresInMs: number }, client: ClientInfo): Promise<{ id: string; token: string; expiresAt: string }> {
    const token = randomSecret();
    const id = randomUUID();
    const now = Date.now();
    const expiresAt = iso(now + input.expiresInMs);
    await this.db
      .insertInto('invites')
      .values({ id, token_hash: this.hasher.hash(token), email: input.email === undefined ? null : normalizeEmail(input.email), roles: JSON.stringify(input.roles ?? ['user']), created_by: actor.id, created_at: iso(now), expires_at: expiresAt, used_at: null, used_by: null })
      .execute();
    this.emit({ type: 'user_invite_created', level: 'INFO', description: 'invitation created', actor: actor.id, subject: id }, client);
    return { id, token, expiresAt };
  }

  async listAudit(query: { limit: number; cursor?: number | undefined; type?: string | undefined; actor?: string | undefined; subject?: string | undefined; since?: string | undefined; until?: string | undefined }) {
    return this.audit.list({ type: query.type, actor: query.actor, subject: query.subject, since: query.since, until: query.until }, query.limit, query.cursor);
  }

  /** The id of the user with this e-mail (the CLI names users by e-mail). */
  async userIdByEmail(email: string): Promise<string | undefined> {
    const normalized = normalizeEmail(email, false);
    return normalized === undefined ? undefined : (await this.#userByEmail(normalized))?.id;
  }

  /** Admin bootstrap (`rampart users create --admin`): no default accounts exist. */
  async bootstrapAdmin(email: string): Promise<{ id: string; oneTimePassword: string }> {
    const created = await this.createUser({ id: 'system', roles: ['admin'], sid: undefined, jti: undefined, exp: undefined }, { email, roles: ['admin'] }, { ip: '', userAgent: undefined, requestId: 'cli' });
    return { id: created.user.id, oneTimePassword: created.oneTimePassword! };
  }

  /** Replays revocations that must survive a restart into the (memory) revocation store. */
  async replayRevocations(now = Date.now()): Promise<void> {
    const horizon = iso(now - this.tokens.ttlSeconds * 1000 - (MAX_SKEW_S + 60) * 1000);
    const tokens = await this.db.selectFrom('revoked_tokens').select(['jti', 'expires_at']).where('expires_at', '>', iso(now)).execute();
    // Prefixed ids (`pwc:`, `mfa:`) are spent single-use tokens of this service, not access tokens.
    for (const t of tokens) if (!/^[a-z]+:/.test(t.jti)) await this.revocation.revokeToken(t.jti, Date.parse(t.expires_at) / 1000);
    const users = await this.db.selectFrom('users').select(['id', 'tokens_not_before']).where('tokens_not_before', '>', horizon).execute();
    for (const u of users) await this.revocation.revokeSubject(u.id, Date.parse(u.tokens_not_before!) / 1000);
  }

  /** Deletes what has expired: access-token records, revocations past expiry, spent refresh tokens of ended sessions. */
  async sweep(now = Date.now()): Promise<void> {
    await this.db.deleteFrom('access_tokens').where('expires_at', '<', iso(now - MAX_SKEW_S * 1000)).execute();
    await this.db.deleteFrom('revoked_tokens').where('expires_at', '<', iso(now)).execute();
    const ended = this.db.selectFrom('refresh_families').select('id').where((eb) => eb.or([eb('expires_at', '<', iso(now - 86_400_000)), eb('revoked_at', '<', iso(now - 86_400_000))]));
    await this.db.deleteFrom('refresh_tokens').where('family_id', 'in', ended).execute();
    // Ended sessions go too, with the IP address and user agent they recorded.
    await this.db.deleteFrom('refresh_families').where((eb) => eb.or([eb('expires_at', '<', iso(now - 86_400_000)), eb('revoked_at', '<', iso(now - 86_400_000))])).execute();
  }

  emit(event: SecurityEvent, client: ClientInfo): void {
    this.#events.emit({ ...event, requestId: client.requestId, ...(client.ip !== '' ? { clientIp: client.ip } : {}) });
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  #checkPassword(password: string, email: string): void {
    const problem = passwordProblem(password, { minLength: this.settings.minPasswordLength, email });
    if (problem !== undefined) throw new RampartError(problem);
  }

  /**
   * One password attempt on an account, claimed before the Argon2 work: the failure is counted
   * (and the lock set when it reaches the threshold) by a compare-and-set on the count, so
   * concurrent guesses are judged one after another and none slips past a lock another set
   * (regression test concurrent-guesses-bypass-lockout). A success resets the count. Decisions
   * are made on the row as it is after the hashing (regression test login-uses-stale-account):
   * an account disabled, locked or given a new password meanwhile does not log in.
   */
  async #attempt(user: UserRow, password: string, client: ClientInfo): Promise<{ ok: false } | { ok: true; user: UserRow; rehash: boolean; now: number }> {
    // The claim's database round trips run alongside the Argon2 work, so a wrong password takes as
    // long as an unknown user (whose path has no claim).
    const [claimed, verified] = await Promise.allSettled([this.#claim(user.id), this.passwords.verify(user.password_hash, password)]);
    if (claimed.status === 'rejected') throw claimed.reason;
    const claim = claimed.value;
    if (verified.status === 'rejected') {
      // No verdict (the hasher shed the attempt, 503): the attempt must not count against the
      // account (regression test shed-attempt-locks-account).
      if (claim.refused === undefined) await this.#unclaim(user.id, claim);
      throw verified.reason;
    }
    const { ok, rehash } = verified.value;
    if (claim.refused !== undefined) {
      this.emit({ type: 'authn_login_fail', level: 'WARN', description: `login refused: account ${claim.refused}`, args: [user.id], subject: user.id, data: { reason: claim.refused } }, client);
      return { ok: false };
    }
    if (!ok) {
      this.emit({ type: 'authn_login_fail', level: 'WARN', description: 'login failed: wrong password', args: [user.id], subject: user.id, data: { reason: 'password', failures: claim.failures } }, client);
      if (claim.lockedUntil !== undefined) {
        const permanent = claim.lockedUntil === LOCKED_FOREVER;
        this.emit(
          { type: 'authn_login_lock', level: permanent ? 'CRITICAL' : 'WARN', description: permanent ? 'account locked until an admin unlocks it' : `account locked until ${claim.lockedUntil}`, args: [user.id], subject: user.id, data: { failures: claim.failures, until: claim.lockedUntil } },
          client,
        );
      }
      return { ok: false };
    }
    await this.db.updateTable('users').set({ failed_logins: 0, locked_until: null }).where('id', '=', user.id).execute();
    const now = Date.now();
    const fresh = await this.#user(user.id);
    if (fresh === undefined || fresh.disabled_at !== null || fresh.password_hash !== user.password_hash) {
      this.emit({ type: 'authn_login_fail', level: 'WARN', description: 'login refused: the account changed during the attempt', args: [user.id], subject: user.id, data: { reason: 'changed' } }, client);
      return { ok: false };
    }
    return { ok: true, user: fresh, rehash, now };
  }

  /** Gives a claimed attempt back, if nothing counted since (compare-and-set). */
  async #unclaim(id: string, claim: { failures: number; lockedUntil?: string; previousLock?: string | null }): Promise<void> {
    let update = this.db.updateTable('users').set({ failed_logins: claim.failures - 1, locked_until: claim.previousLock ?? null }).where('id', '=', id).where('failed_logins', '=', claim.failures);
    update = claim.lockedUntil === undefined ? update : update.where('locked_until', '=', claim.lockedUntil);
    await update.execute();
  }

  /** Counts an attempt as a failure until it succeeds; refuses it while the account is locked or disabled. */
  async #claim(id: string): Promise<{ refused?: 'locked' | 'disabled'; failures: number; lockedUntil?: string; previousLock?: string | null }> {
    const { threshold, baseMs, maxMs, permanentAfter } = this.settings.lockout;
    for (let round = 0; round < 20; round++) {
      const row = await this.db.selectFrom('users').select(['failed_logins', 'locked_until', 'disabled_at']).where('id', '=', id).executeTakeFirst();
      if (row === undefined || row.disabled_at !== null) return { refused: 'disabled', failures: 0 };
      const now = Date.now();
      if (row.locked_until !== null && Date.parse(row.locked_until) > now) return { refused: 'locked', failures: row.failed_logins };
      const failures = row.failed_logins + 1;
      const lockedUntil = failures >= permanentAfter ? LOCKED_FOREVER : failures >= threshold ? iso(now + Math.min(maxMs, baseMs * 2 ** Math.min(failures - threshold, 30))) : undefined;
      let update = this.db.updateTable('users').set({ failed_logins: failures, ...(lockedUntil !== undefined ? { locked_until: lockedUntil } : {}) }).where('id', '=', id).where('failed_logins', '=', row.failed_logins);
      update = row.locked_until === null ? update.where('locked_until', 'is', null) : update.where('locked_until', '=', row.locked_until);
      const claimed = await update.executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 1) return { failures, previousLock: row.locked_until, ...(lockedUntil !== undefined ? { lockedUntil } : {}) };
    }
    // Twenty lost races in a row: treat it as locked rather than count without bound.
    return { refused: 'locked', failures: 0 };
  }

  /**
   * A new login session (family, first refresh token, access token), all or nothing, for the
   * account as it is in this transaction: not disabled, with the password that was checked, and
   * with its roles as they are now (regression test session-from-stale-account). Otherwise the
   * transaction is rolled back with StaleAccount.
   */
  async #createSession(trx: Transaction<Database>, userId: string, expectedHash: string, client: ClientInfo, now: number, amr = AMR_PASSWORD): Promise<{ user: UserRow; family: string; refresh: string; access: IssuedAccess }> {
    let query = trx.selectFrom('users').selectAll().where('id', '=', userId);
    if (trx.getExecutor().adapter instanceof PostgresAdapter) query = query.forShare();
    const user = (await query.executeTakeFirst()) as UserRow | undefined;
    if (user === undefined || user.disabled_at !== null || user.password_hash !== expectedHash) throw new StaleAccount();
    const family = randomUUID();
    const refresh = randomSecret();
    const expires = now + this.settings.refreshAbsoluteMs;
    await trx
      .insertInto('refresh_families')
      .values({ id: family, user_id: user.id, client_id: this.tokens.clientId, created_at: iso(now), expires_at: iso(expires), last_used_at: iso(now), revoked_at: null, revoked_reason: null, client_ip: client.ip || null, user_agent: client.userAgent?.slice(0, 256) ?? null, amr: amr === AMR_PASSWORD ? null : JSON.stringify(amr) })
      .execute();
    await trx
      .insertInto('refresh_tokens')
      .values({ id: randomUUID(), family_id: family, user_id: user.id, token_hash: this.hasher.hash(refresh), issued_at: iso(now), expires_at: iso(Math.min(expires, now + this.settings.refreshIdleMs)), used_at: null, revoked_at: null, parent_id: null })
      .execute();
    return { user, family, refresh, access: await this.#issueAccess(trx, user, family, now, amr) };
  }

  #sessionStarted(session: { user: UserRow; family: string; refresh: string; access: IssuedAccess }, client: ClientInfo): TokenResponse {
    const user = session.user;
    this.emit({ type: 'authn_token_created', level: 'INFO', description: 'session started', args: [user.id], actor: user.id, subject: user.id, data: { session: session.family, jti: this.hasher.auditId(session.access.jti) } }, client);
    return this.#tokenResponse(session.access, session.refresh, user);
  }

  async #issueAccess(db: Kysely<Database> | Transaction<Database>, user: UserRow, family: string, now: number, amr: readonly string[]): Promise<IssuedAccess> {
    const roles = parseList(user.roles);
    const access = await this.tokens.issue({ sub: user.id, roles, scope: this.#scopes(roles), sid: family, amr }, now);
    await db.insertInto('access_tokens').values({ jti: access.jti, family_id: family, user_id: user.id, expires_at: iso(access.exp * 1000) }).execute();
    return access;
  }

  /** A transaction's result, or undefined when it was rolled back because the account changed meanwhile. */
  async #unlessStale<T>(work: Promise<T>): Promise<T | undefined> {
    try {
      return await work;
    } catch (error) {
      if (error instanceof StaleAccount) return undefined;
      throw error;
    }
  }

  async #sessionEnded(family: string): Promise<boolean> {
    const row = await this.db.selectFrom('refresh_families').select('revoked_at').where('id', '=', family).executeTakeFirst();
    return row === undefined || row.revoked_at !== null;
  }

  #tokenResponse(access: IssuedAccess, refresh: string, user: UserRow): TokenResponse {
    return { access_token: access.token, token_type: 'Bearer', expires_in: this.tokens.ttlSeconds, refresh_token: refresh, scope: this.#scopes(parseList(user.roles)) };
  }

  #scopes(roles: readonly string[]): string {
    return this.scopesOf(roles).join(' ');
  }

  /** The scopes roles give (the union over them). */
  scopesOf(roles: readonly string[]): string[] {
    const scopes = new Set<string>();
    for (const role of roles) for (const s of this.settings.scopes[role] ?? []) scopes.add(s);
    return [...scopes];
  }

  async #endAllSessions(userId: string, reason: string, now: number): Promise<void> {
    await this.db.transaction().execute((trx) => this.#endAllSessionsIn(trx, userId, reason, now));
    await this.#publishNotBefore(userId, now);
  }

  /**
   * Every session of the user ends, in the database: the user's not-before time (which refuses
   * every access token issued up to and including this millisecond, and every session created
   * before it at its next refresh) and the families revoked.
   */
  async #endAllSessionsIn(trx: Transaction<Database>, userId: string, reason: string, now: number): Promise<void> {
    // Only ever forward (ISO times of one format compare as text).
    await trx
      .updateTable('users')
      .set({ tokens_not_before: iso(now + 1) })
      .where('id', '=', userId)
      .where((eb) => eb.or([eb('tokens_not_before', 'is', null), eb('tokens_not_before', '<', iso(now + 1))]))
      .execute();
    await trx.updateTable('refresh_families').set({ revoked_at: iso(now), revoked_reason: reason }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
  }

  /** The not-before time, to the revocation store every gateway checks (replayed from the database at start). */
  async #publishNotBefore(userId: string, now: number): Promise<void> {
    await this.revocation.revokeSubject(userId, (now + 1) / 1000);
    // And every access token of theirs still alive, by id: one made by a refresh that raced the
    // change carries a later `iat` than the not-before time.
    const live = await this.db.selectFrom('access_tokens as a').innerJoin('refresh_families as f', 'f.id', 'a.family_id').select(['a.jti', 'a.expires_at']).where('a.user_id', '=', userId).where('f.revoked_at', 'is not', null).where('a.expires_at', '>', iso(Date.now() - MAX_SKEW_S * 1000)).execute();
    for (const t of live) await this.#denyAccess(t.jti, Date.parse(t.expires_at) / 1000);
  }

  /** Revokes sessions: their refresh tokens die with the family, their live access tokens are denylisted. */
  async #revokeFamilies(ids: string[], reason: string, now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('refresh_families').set({ revoked_at: iso(now), revoked_reason: reason }).where('id', 'in', ids).where('revoked_at', 'is', null).execute();
    const live = await this.db.selectFrom('access_tokens').select(['jti', 'expires_at']).where('family_id', 'in', ids).where('expires_at', '>', iso(now - MAX_SKEW_S * 1000)).execute();
    for (const t of live) await this.#denyAccess(t.jti, Date.parse(t.expires_at) / 1000);
  }

  /**
   * Denylists an access token until it could no longer be accepted anyway: its `exp` plus the
   * largest clock skew a jwt policy allows (regression test logged-out-token-revived-by-skew).
   */
  async #denyAccess(jti: string, exp: number): Promise<void> {
    const until = exp + MAX_SKEW_S;
    await this.revocation.revokeToken(jti, until);
    await this.db.insertInto('revoked_tokens').values({ jti, expires_at: iso(until * 1000) }).onConflict((oc) => oc.column('jti').doNothing()).execute();
  }

  /**
   * Refuses a change that would leave no active admin (nobody could manage users any more). Runs
   * in the transaction that makes the change: on PostgreSQL the admin rows are locked (FOR UPDATE),
   * so two admins removing each other at once are serialized; SQLite serializes transactions anyway.
   */
  async #keepAnAdmin(trx: Transaction<Database>, leaving: string): Promise<void> {
    let query = trx.selectFrom('users').select('id').where('disabled_at', 'is', null).where(sql<boolean>`roles like ${'%"admin"%'}`);
    // Locked in one order (by id) so two such transactions cannot deadlock.
    if (trx.getExecutor().adapter instanceof PostgresAdapter) query = query.orderBy('id').forUpdate();
    const admins = await query.execute();
    if (!admins.some((a) => a.id !== leaving)) throw new RampartError('RMP_LAST_ADMIN');
  }

  async #user(id: string): Promise<UserRow | undefined> {
    return (await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()) as UserRow | undefined;
  }

  async #userByEmail(email: string): Promise<UserRow | undefined> {
    return (await this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst()) as UserRow | undefined;
  }

  async #insertUser(db: Kysely<Database> | Transaction<Database>, u: { id: string; email: string; hash: string; roles: string[]; now: number; changeRequired: boolean }): Promise<boolean> {
    const result = await db
      .insertInto('users')
      .values({ id: u.id, email: u.email, password_hash: u.hash, roles: JSON.stringify(u.roles), created_at: iso(u.now), updated_at: iso(u.now), disabled_at: null, locked_until: null, tokens_not_before: null, password_change_required: u.changeRequired ? 1 : 0 })
      .onConflict((oc) => oc.column('email').doNothing())
      .executeTakeFirst();
    return numInserted(result) === 1;
  }
}

function mfaTokenRefused(): RampartError {
  return new RampartError('RMP_AUTH_TOKEN_INVALID', { detail: 'The MFA token is not valid (expired, used, or the password changed): log in again.' });
}

function toDto(row: UserRow, now: number): UserDto {
  const locked = row.locked_until !== null && Date.parse(row.locked_until) > now;
  return {
    id: row.id,
    email: row.email,
    roles: parseList(row.roles),
    status: row.disabled_at !== null ? 'disabled' : locked ? 'locked' : 'active',
    passwordChangeRequired: row.password_change_required === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A session's `amr` as stored (null: the password alone). */
function parseAmr(text: string | null): readonly string[] {
  if (text === null) return AMR_PASSWORD;
  try {
    const value = JSON.parse(text) as unknown;
    return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string') ? (value as string[]) : AMR_PASSWORD;
  } catch {
    return AMR_PASSWORD;
  }
}

/** Lowercased and checked; with `strict` false, an invalid address gives undefined (login treats it as unknown). */
export function normalizeEmail(email: string, strict?: true): string;
export function normalizeEmail(email: string, strict: false): string | undefined;
export function normalizeEmail(email: string, strict = true): string | undefined {
  const value = email.trim().toLowerCase();
  if (value.length <= 320 && EMAIL.test(value)) return value;
  if (!strict) return undefined;
  throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: '/email', detail: 'must be an e-mail address' }] } });
}

/** A one-time password: 20 characters from an unambiguous alphabet (about 114 bits). */
function oneTimePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789';
  let out = '';
  for (let i = 0; i < 20; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** A LIKE pattern's literal part, with `\\` as the escape character. */
function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

