import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { RampartError } from '../errors/problem.js';
import type { Events, SecurityEvent } from '../observability/events.js';
import type { Database, UserMfaTable } from '../storage/schema.js';
import type { SigningKeys } from './keys.js';
import type { MasterKey } from './master-key.js';
import { MfaTokens } from './mfa-tokens.js';
import type { ClientInfo } from './service.js';
import { iso, LOCKED_FOREVER } from './rows.js';
import type { TokenHasher } from './tokens.js';
import { generateSecret, otpauthUri, qrCodeDataUrl, verify as verifyTotp } from './totp.js';

/** What TOTP secrets are encrypted for under the master key (the HKDF purpose and the AES-GCM associated data). */
export const TOTP_PURPOSE = 'totp-secrets';

/** Recovery codes given at a time; each is single use. */
export const RECOVERY_CODES = 10;

/**
 * Crockford's base32 alphabet, lowercased: no i, l, o or u, so nothing reads as something else;
 * 16 characters of it are 10 random bytes exactly (80 bits).
 */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const RECOVERY_CODE = /^[0-9a-hjkmnp-tv-z]{16}$/;

export interface MfaSettings {
  /** The issuer name authenticator apps show (`identity.mfa.issuer`). */
  issuer: string;
  /** Roles whose accounts must have TOTP on to log in (they enrol during login). */
  requireForRoles: readonly string[];
  /** Consecutive wrong codes before a temporary lock, doubled per further failure up to `maxMs`. */
  lockout: { threshold: number; baseMs: number; maxMs: number; permanentAfter: number };
}

export type MfaState = 'off' | 'pending' | 'on';

export interface MfaStatus {
  totp: MfaState;
  enabledAt: string | null;
  recoveryCodesLeft: number;
}

/** What enrolment shows, once: the secret, as text, as a key URI and as a QR code of that URI. */
export interface Enrolment {
  secret: string;
  otpauthUri: string;
  qrCode: string;
}

/** A second factor as given: a TOTP code or a recovery code. */
export type SecondFactor = { code: string; recoveryCode?: undefined } | { recoveryCode: string; code?: undefined };

export type MfaMethod = 'totp' | 'recovery';

/** Who asks: the request's client, the authenticated user when there is one, and the time (tests pass it). */
export interface MfaContext {
  client: ClientInfo;
  actor?: string | undefined;
  now?: number | undefined;
}

/** Work done in the transaction that accepts a code: if it throws, the code is not used up. */
export type Within<T> = (trx: Transaction<Database>) => Promise<T>;

type MfaRow = Selectable<UserMfaTable>;

/** The code was right but lost the race (or was already used): refused like a wrong one. */
class CodeSpent extends Error {
  constructor() {
    super('the code or its time step was already used');
  }
}


/**
 * TOTP second factor (RFC 6238) and recovery codes, over `user_mfa` and `recovery_codes`.
 *
 * - A secret is encrypted under the master key (it must be recoverable, so it cannot be hashed),
 *   bound to its user. It is pending until a first code confirms it.
 * - A code is accepted once: `user_mfa.last_step` keeps the last time step accepted, and a code is
 *   taken only by a compare-and-set `… WHERE last_step < step`, so the same code twice, an older
 *   step after a newer one, and two concurrent uses of one code all leave exactly one winner.
 * - Recovery codes (10, 80 bits each) are stored as keyed hashes and spent by `… WHERE used_at IS NULL`.
 * - Wrong codes are counted per account in `user_mfa.failed` (apart from the password's count),
 *   claimed before the code is checked, and lock the second factor for a while past the threshold.
 */
export class Mfa {
  readonly tokens: MfaTokens;
  readonly settings: MfaSettings;
  readonly #db: Kysely<Database>;
  readonly #master: MasterKey;
  readonly #hasher: TokenHasher;
  readonly #events: Events;

  constructor(parts: { db: Kysely<Database>; master: MasterKey; hasher: TokenHasher; keys: SigningKeys; tokenIssuer: string; events: Events; settings: MfaSettings }) {
    this.#db = parts.db;
    this.#master = parts.master;
    this.#hasher = parts.hasher;
    this.#events = parts.events;
    this.settings = parts.settings;
    this.tokens = new MfaTokens(parts.keys, parts.tokenIssuer);
  }

  /** Whether an account with these roles must have a second factor to log in. */
  requiredFor(roles: readonly string[]): boolean {
    return roles.some((r) => this.settings.requireForRoles.includes(r));
  }

  async state(userId: string): Promise<MfaState> {
    const row = await this.#db.selectFrom('user_mfa').select('enabled_at').where('user_id', '=', userId).executeTakeFirst();
    return row === undefined ? 'off' : row.enabled_at === null ? 'pending' : 'on';
  }

  async status(userId: string): Promise<MfaStatus> {
    const row = await this.#db.selectFrom('user_mfa').select('enabled_at').where('user_id', '=', userId).executeTakeFirst();
    const left = row?.enabled_at == null ? 0 : await this.#recoveryCodesLeft(userId);
    return { totp: row === undefined ? 'off' : row.enabled_at === null ? 'pending' : 'on', enabledAt: row?.enabled_at ?? null, recoveryCodesLeft: left };
  }

  /**
   * A new secret, pending until confirmed; it replaces a pending one (and its failure count), never
   * one that is on (409 `RMP_MFA_ALREADY_ENABLED`: disable first). `account` labels it in the app.
   */
  async enrol(userId: string, account: string, ctx: MfaContext): Promise<Enrolment> {
    const now = ctx.now ?? Date.now();
    const secret = generateSecret();
    const sealed = this.#seal(userId, secret);
    const fresh = { secret_encrypted: sealed, created_at: iso(now), enabled_at: null, last_step: 0, failed: 0, locked_until: null };
    const result = await this.#db
      .insertInto('user_mfa')
      .values({ user_id: userId, ...fresh })
      .onConflict((oc) => oc.column('user_id').doUpdateSet(fresh).where('user_mfa.enabled_at', 'is', null))
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new RampartError('RMP_MFA_ALREADY_ENABLED');
    this.#emit({ type: 'authn_mfa_enrol', level: 'INFO', description: 'TOTP enrolment started (pending until a code confirms it)', args: [userId], actor: ctx.actor, subject: userId }, ctx.client);
    const uri = otpauthUri(secret, this.settings.issuer, account);
    return { secret, otpauthUri: uri, qrCode: qrCodeDataUrl(uri) };
  }

  /**
   * Confirms a pending enrolment with a first code: TOTP is on, the code's step is used, and 10
   * new recovery codes replace any old ones (returned once). `within` runs in the same transaction.
   */
  async confirm<T>(userId: string, code: string, ctx: MfaContext, within?: Within<T>): Promise<{ recoveryCodes: string[]; result: T | undefined }> {
    const now = ctx.now ?? Date.now();
    const claim = await this.#claim(userId, 'pending', ctx, now);
    const step = verifyTotp(this.#open(claim.row), normalizeCode(code), now);
    if (step === undefined) throw this.#failed(userId, claim, 'code', ctx);
    const recoveryCodes = newRecoveryCodes();
    let result: T | undefined;
    try {
      result = await this.#db.transaction().execute(async (trx) => {
        const won = await trx
          .updateTable('user_mfa')
          .set({ enabled_at: iso(now), last_step: step, failed: 0, locked_until: null })
          .where('user_id', '=', userId)
          .where('enabled_at', 'is', null)
          .where('secret_encrypted', '=', claim.row.secret_encrypted)
          .where('last_step', '<', step)
          .executeTakeFirst();
        if (Number(won.numUpdatedRows) !== 1) throw new CodeSpent();
        await this.#storeRecoveryCodes(trx, userId, recoveryCodes, now);
        return within?.(trx);
      });
    } catch (error) {
      if (error instanceof CodeSpent) throw this.#failed(userId, claim, 'replay', ctx);
      throw error;
    }
    this.#emit({ type: 'authn_mfa_enabled', level: 'INFO', description: 'TOTP second factor enabled; recovery codes issued', args: [userId], actor: ctx.actor ?? userId, subject: userId, data: { recoveryCodes: RECOVERY_CODES } }, ctx.client);
    return { recoveryCodes, result };
  }

  /**
   * Checks a second factor of an account with TOTP on: a code of a step later than the last one
   * used, or an unused recovery code. On success the code is used up and `within` runs, in one
   * transaction (if it throws, nothing is used up). Wrong, replayed, and any code while locked:
   * 401 `RMP_MFA_CODE_INVALID`, one answer for all.
   */
  async verify<T>(userId: string, factor: SecondFactor, ctx: MfaContext, within?: Within<T>): Promise<{ method: MfaMethod; result: T | undefined }> {
    const now = ctx.now ?? Date.now();
    const claim = await this.#claim(userId, 'on', ctx, now);
    const reset = (trx: Transaction<Database>) => trx.updateTable('user_mfa').set({ failed: 0, locked_until: null }).where('user_id', '=', userId).execute();
    if (factor.recoveryCode !== undefined) {
      const normalized = normalizeRecoveryCode(factor.recoveryCode);
      if (normalized === undefined) throw this.#failed(userId, claim, 'recovery_code', ctx);
      const hash = this.#hasher.hash(normalized);
      try {
        const result = await this.#db.transaction().execute(async (trx) => {
          // Rows are locked in one order everywhere (user_mfa, then recovery_codes), so no two of these transactions deadlock.
          await reset(trx);
          const spent = await trx.updateTable('recovery_codes').set({ used_at: iso(now) }).where('user_id', '=', userId).where('code_hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
          if (Number(spent.numUpdatedRows) !== 1) throw new CodeSpent();
          return within?.(trx);
        });
        const left = await this.#recoveryCodesLeft(userId);
        this.#emit({ type: 'authn_mfa_recovery_used', level: 'WARN', description: `a recovery code was used (${left} left)`, args: [userId], actor: ctx.actor, subject: userId, data: { left } }, ctx.client);
        return { method: 'recovery', result };
      } catch (error) {
        if (error instanceof CodeSpent) throw this.#failed(userId, claim, 'recovery_code', ctx);
        throw error;
      }
    }
    const step = verifyTotp(this.#open(claim.row), normalizeCode(factor.code), now);
    if (step === undefined) throw this.#failed(userId, claim, 'code', ctx);
    try {
      const result = await this.#db.transaction().execute(async (trx) => {
        // The compare-and-set that makes a code single use: of concurrent uses one wins, and no step
        // at or before the last one accepted is taken again.
        const won = await trx
          .updateTable('user_mfa')
          .set({ last_step: step, failed: 0, locked_until: null })
          .where('user_id', '=', userId)
          .where('enabled_at', 'is not', null)
          .where('secret_encrypted', '=', claim.row.secret_encrypted)
          .where('last_step', '<', step)
          .executeTakeFirst();
        if (Number(won.numUpdatedRows) !== 1) throw new CodeSpent();
        return within?.(trx);
      });
      return { method: 'totp', result };
    } catch (error) {
      if (error instanceof CodeSpent) throw this.#failed(userId, claim, 'replay', ctx);
      throw error;
    }
  }

  /** Owner: turns TOTP off after a second factor (the route has checked the password). */
  async disable(userId: string, factor: SecondFactor, ctx: MfaContext): Promise<void> {
    const { method } = await this.verify(userId, factor, ctx, (trx) => this.#remove(trx, userId));
    this.#emit({ type: 'authn_mfa_disabled', level: 'WARN', description: 'TOTP second factor disabled by its owner', args: [userId], actor: ctx.actor ?? userId, subject: userId, data: { method } }, ctx.client);
  }

  /** Owner: 10 new recovery codes after a second factor; the old ones stop working. */
  async replaceRecoveryCodes(userId: string, factor: SecondFactor, ctx: MfaContext): Promise<string[]> {
    const now = ctx.now ?? Date.now();
    const codes = newRecoveryCodes();
    const { method } = await this.verify(userId, factor, ctx, (trx) => this.#storeRecoveryCodes(trx, userId, codes, now));
    this.#emit({ type: 'authn_mfa_recovery_codes_created', level: 'INFO', description: 'new recovery codes issued; the old ones are void', args: [userId], actor: ctx.actor ?? userId, subject: userId, data: { method, recoveryCodes: RECOVERY_CODES } }, ctx.client);
    return codes;
  }

  /** Admin: removes the second factor (a lost device); false when there was none. The caller ends the sessions. */
  async reset(userId: string, ctx: MfaContext & { actor: string }): Promise<boolean> {
    const removed = await this.#db.transaction().execute((trx) => this.#remove(trx, userId));
    if (removed) this.#emit({ type: 'authn_mfa_reset', level: 'WARN', description: 'second factor removed by an admin', args: [userId], actor: ctx.actor, subject: userId }, ctx.client);
    return removed;
  }

  /**
   * Master-key rotation, in the caller's transaction: every TOTP secret not under the current key
   * is re-encrypted under it (a previous key still decrypts it). Returns how many were.
   */
  static async reencrypt(trx: Transaction<Database>, master: MasterKey): Promise<number> {
    const rows = await trx.selectFrom('user_mfa').select(['user_id', 'secret_encrypted']).execute();
    let reencrypted = 0;
    for (const row of rows) {
      const sealed = master.reencrypted(row.secret_encrypted, TOTP_PURPOSE);
      if (sealed === undefined) continue;
      await trx.updateTable('user_mfa').set({ secret_encrypted: sealed }).where('user_id', '=', row.user_id).where('secret_encrypted', '=', row.secret_encrypted).execute();
      reencrypted++;
    }
    return reencrypted;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /**
   * Counts an attempt as a failure before the code is checked (compare-and-set on the count, as for
   * passwords), so concurrent guesses are judged one after another and none slips past a lock.
   * Refused (no count) while locked, and when there is no enrolment in the state asked for.
   */
  async #claim(userId: string, state: 'pending' | 'on', ctx: MfaContext, now: number): Promise<{ row: MfaRow; failures: number; lockedUntil?: string }> {
    const { threshold, baseMs, maxMs, permanentAfter } = this.settings.lockout;
    for (let round = 0; round < 20; round++) {
      const row = await this.#db.selectFrom('user_mfa').selectAll().where('user_id', '=', userId).executeTakeFirst();
      if (row === undefined || (state === 'on') !== (row.enabled_at !== null)) {
        if (state === 'pending' && row !== undefined) throw new RampartError('RMP_MFA_ALREADY_ENABLED');
        throw new RampartError('RMP_MFA_NOT_ENROLLED', { detail: state === 'pending' ? 'There is no TOTP enrolment to confirm: start one with enrol.' : 'TOTP is not on for this account.' });
      }
      if (row.locked_until !== null && Date.parse(row.locked_until) > now) {
        this.#emit({ type: 'authn_mfa_fail', level: 'WARN', description: 'second factor refused: locked after too many wrong codes', args: [userId], subject: userId, data: { reason: 'locked' } }, ctx.client);
        throw codeInvalid();
      }
      const failures = row.failed + 1;
      // Past permanentAfter, locked until an admin resets the second factor (the row goes, and the count with it).
      const lockedUntil = failures >= permanentAfter ? LOCKED_FOREVER : failures >= threshold ? iso(now + Math.min(maxMs, baseMs * 2 ** Math.min(failures - threshold, 30))) : undefined;
      let update = this.#db.updateTable('user_mfa').set({ failed: failures, ...(lockedUntil !== undefined ? { locked_until: lockedUntil } : {}) }).where('user_id', '=', userId).where('failed', '=', row.failed);
      update = row.locked_until === null ? update.where('locked_until', 'is', null) : update.where('locked_until', '=', row.locked_until);
      const claimed = await update.executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 1) return { row, failures, ...(lockedUntil !== undefined ? { lockedUntil } : {}) };
    }
    // Twenty lost races in a row: a flood of guesses; refuse rather than count without bound.
    throw codeInvalid();
  }

  /** A refused code: the failure (already counted) and any lock it set go to the audit trail. */
  #failed(userId: string, claim: { failures: number; lockedUntil?: string }, reason: 'code' | 'replay' | 'recovery_code', ctx: MfaContext): RampartError {
    const what = { code: 'wrong code', replay: 'code already used', recovery_code: 'unknown or used recovery code' }[reason];
    this.#emit({ type: 'authn_mfa_fail', level: 'WARN', description: `second factor refused: ${what}`, args: [userId], subject: userId, data: { reason, failures: claim.failures } }, ctx.client);
    if (claim.lockedUntil !== undefined) {
      this.#emit({ type: 'authn_mfa_lock', level: 'WARN', description: `second factor locked until ${claim.lockedUntil}`, args: [userId], subject: userId, data: { failures: claim.failures, until: claim.lockedUntil } }, ctx.client);
    }
    return codeInvalid();
  }

  async #storeRecoveryCodes(trx: Transaction<Database>, userId: string, codes: readonly string[], now: number): Promise<void> {
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    await trx
      .insertInto('recovery_codes')
      .values(codes.map((c) => ({ id: randomUUID(), user_id: userId, code_hash: this.#hasher.hash(normalizeRecoveryCode(c)!), created_at: iso(now), used_at: null })))
      .execute();
  }

  async #remove(trx: Transaction<Database>, userId: string): Promise<boolean> {
    const removed = await trx.deleteFrom('user_mfa').where('user_id', '=', userId).executeTakeFirst();
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    return Number(removed.numDeletedRows) === 1;
  }

  async #recoveryCodesLeft(userId: string): Promise<number> {
    const row = await this.#db.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<number | string | bigint>().as('n')).where('user_id', '=', userId).where('used_at', 'is', null).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** The secret is sealed with its user's id inside: a ciphertext copied to another account's row does not open there. */
  #seal(userId: string, secret: string): string {
    return this.#master.encrypt(`${userId}:${secret}`, TOTP_PURPOSE);
  }

  #open(row: MfaRow): string {
    const plain = this.#master.decrypt(row.secret_encrypted, TOTP_PURPOSE);
    const prefix = `${row.user_id}:`;
    if (!plain.startsWith(prefix)) throw new Error('a TOTP secret is sealed for another account');
    return plain.slice(prefix.length);
  }

  #emit(event: SecurityEvent, client: ClientInfo): void {
    this.#events.emit({ ...event, requestId: client.requestId, ...(client.ip !== '' ? { clientIp: client.ip } : {}) });
  }
}

function codeInvalid(): RampartError {
  return new RampartError('RMP_MFA_CODE_INVALID');
}

/** Codes as apps show them may carry a space in the middle (`123 456`). */
function normalizeCode(code: string): string {
  return code.replace(/\s/g, '');
}

/** Ten recovery codes, shown as `abcd-efgh-jkmn-pqrs` (16 characters of Crockford's base32, 80 bits). */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODES }, () => {
    const bytes = randomBytes(10);
    let bits = 0n;
    for (const b of bytes) bits = (bits << 8n) | BigInt(b);
    let text = '';
    for (let i = 15; i >= 0; i--) text += RECOVERY_ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
    return text.match(/.{4}/g)!.join('-');
  });
}

/**
 * A recovery code as typed, in the form it is hashed in: case, spaces and hyphens ignored, and the
 * letters Crockford's base32 leaves out read as the digits they look like (o → 0, i and l → 1).
 * Undefined when it cannot be one.
 */
export function normalizeRecoveryCode(code: string): string | undefined {
  if (code.length > 64) return undefined;
  const text = code.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  return RECOVERY_CODE.test(text) ? text : undefined;
}
