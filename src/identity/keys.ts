import { createPublicKey, type KeyObject, type JsonWebKey as NodeJsonWebKey } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, errors, type JWK, type CryptoKey } from 'jose';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { MasterKey } from './master-key.js';

export type SigningAlgorithm = 'EdDSA' | 'ES256';

const PURPOSE = 'signing-keys';

export interface KeyTimes {
  /** How long a key signs before the next one takes over. */
  rotateEveryMs: number;
  /** The JWKS cache lifetime: a next key is published at least this long before it signs. */
  jwksMaxAgeMs: number;
  /** A retired key stays published (and accepted) this long: the longest a token it signed lives, plus skew. */
  retainMs: number;
}

interface LoadedKey {
  kid: string;
  /**
   * Revoked keys stay in the list when they had come into force: they still retire their
   * predecessors (never published, never signing). A key revoked before it ever signed is left out,
   * as if it had never been made.
   */
  revoked: boolean;
  alg: string;
  activeFrom: number;
  createdAt: number;
  publicJwk: JWK;
  verify: KeyObject;
  encrypted: string;
}

/** What happened to a key, for the audit trail: made, signing on this node from now, or revoked. */
export interface KeyChange {
  kind: 'created' | 'activated' | 'revoked';
  kid: string;
  activeFrom: string;
}

export interface KeyInfo {
  kid: string;
  alg: string;
  state: 'next' | 'current' | 'previous';
  createdAt: string;
  activeFrom: string;
}

/**
 * The identity service's signing keys, kept in the database (private halves encrypted under the
 * master key, `kid` = RFC 7638 thumbprint). At any time the signing key is the newest key whose
 * `activeFrom` has come; a next key is always published ahead of it (at least one JWKS cache
 * lifetime) and a retired key stays published until every token it signed has expired. Every node
 * re-reads the table on `refresh()`, so a rotation or an emergency revocation on one node reaches all.
 */
export class SigningKeys {
  readonly #db: Kysely<Database>;
  readonly #master: MasterKey;
  readonly #alg: SigningAlgorithm;
  readonly #times: KeyTimes;
  #keys: LoadedKey[] = [];
  #signer: { kid: string; key: CryptoKey | Uint8Array } | undefined;
  #jwks = '{"keys":[]}';
  #fingerprint = '';
  /** Bumped whenever the set of accepted keys changes (verified-token caches check it). */
  generation = 0;

  readonly #onChange: ((change: KeyChange) => void) | undefined;

  constructor(db: Kysely<Database>, master: MasterKey, alg: SigningAlgorithm, times: KeyTimes, onChange?: (change: KeyChange) => void) {
    this.#onChange = onChange;
    this.#db = db;
    this.#master = master;
    this.#alg = alg;
    this.#times = times;
  }

  /**
   * Makes sure a signing key and a next key exist (first start: one key active now, one next key
   * after `rotateEvery`), promotes the next key when its time has come, and reloads.
   */
  async ensure(now = Date.now()): Promise<void> {
    await this.refresh(now);
    const current = this.#current(now);
    if (current === undefined) {
      // No key signs (its key was revoked): the published next key takes over at once; only on
      // first start, with nothing published, is a key made that signs straight away.
      const next = this.#next(now);
      if (next !== undefined) await this.#db.updateTable('signing_keys').set({ active_from: new Date(now).toISOString() }).where('kid', '=', next.kid).where('revoked_at', 'is', null).execute();
      else await this.#create(now, now);
      await this.refresh(now);
    }
    if (this.#next(now) === undefined) {
      const signer = this.#current(now)!;
      await this.#create(now, Math.max(signer.activeFrom + this.#times.rotateEveryMs, now + this.#times.jwksMaxAgeMs));
      await this.refresh(now);
    }
  }

  /** Re-reads the keys (another node may have rotated or revoked). */
  async refresh(now = Date.now()): Promise<void> {
    const rows = await this.#db.selectFrom('signing_keys').selectAll().orderBy('active_from', 'asc').execute();
    const everSigned = rows.filter((row) => row.revoked_at === null || row.revoked_at >= row.active_from);
    const keys: LoadedKey[] = everSigned.map((row) => {
      const publicJwk = JSON.parse(row.public_jwk) as JWK;
      return {
        kid: row.kid,
        revoked: row.revoked_at !== null,
        alg: row.alg,
        activeFrom: Date.parse(row.active_from),
        createdAt: Date.parse(row.created_at),
        publicJwk,
        verify: createPublicKey({ key: publicJwk as NodeJsonWebKey, format: 'jwk' }),
        encrypted: row.private_jwk_encrypted,
      };
    });
    this.#keys = keys;
    const published = this.#published(now);
    const fingerprint = published.map((k) => k.kid).join(',');
    if (fingerprint !== this.#fingerprint) {
      this.#fingerprint = fingerprint;
      this.generation++;
      this.#jwks = JSON.stringify({ keys: published.map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })) });
    }
    const current = this.#current(now);
    if (current !== undefined && this.#signer?.kid !== current.kid) {
      const jwk = JSON.parse(this.#master.decrypt(current.encrypted, PURPOSE)) as JWK;
      this.#signer = { kid: current.kid, key: await importJWK(jwk, current.alg) };
      this.#onChange?.({ kind: 'activated', kid: current.kid, activeFrom: new Date(current.activeFrom).toISOString() });
    }
    if (current === undefined) this.#signer = undefined;
  }

  /** The key that signs now. */
  signer(): { kid: string; alg: string; key: CryptoKey | Uint8Array } {
    if (this.#signer === undefined) throw new Error('no signing key: the identity service has not started');
    return { kid: this.#signer.kid, alg: this.#alg, key: this.#signer.key };
  }

  /** The JWKS document: next, current and previous public keys. */
  get jwks(): string {
    return this.#jwks;
  }

  /** The public key for a token's `kid`, if that key is published (never a revoked one). */
  verificationKey(kid: string | undefined, now = Date.now()): KeyObject {
    if (kid !== undefined) {
      for (const key of this.#published(now)) if (key.kid === kid) return key.verify;
    }
    throw new errors.JWKSNoMatchingKey();
  }

  list(now = Date.now()): KeyInfo[] {
    const current = this.#current(now);
    return this.#published(now).map((k) => ({
      kid: k.kid,
      alg: k.alg,
      state: k.activeFrom > now ? 'next' : k === current ? 'current' : 'previous',
      createdAt: new Date(k.createdAt).toISOString(),
      activeFrom: new Date(k.activeFrom).toISOString(),
    }));
  }

  /**
   * Rotation on demand: the next key signs as soon as it has been published for one JWKS cache
   * lifetime (at once if it has been), and a new next key is published behind it. Returns the key
   * and the time it starts signing (each node switches at its next refresh from then on).
   */
  async rotate(now = Date.now()): Promise<{ kid: string; activeFrom: string }> {
    await this.ensure(now);
    const next = this.#next(now)!;
    const from = Math.max(now, next.createdAt + this.#times.jwksMaxAgeMs);
    const moved = await this.#db.updateTable('signing_keys').set({ active_from: new Date(from).toISOString() }).where('kid', '=', next.kid).where('revoked_at', 'is', null).executeTakeFirst();
    // Revoked meanwhile (by another node): start again with the schedule as it now is.
    if (Number(moved.numUpdatedRows) !== 1) return this.rotate(now);
    await this.refresh(now);
    // A new next key behind it, unless one is already scheduled (a second rotate before the first took effect).
    if (!this.#keys.some((k) => k.alg === this.#alg && !k.revoked && k.activeFrom > from)) await this.#create(now, from + this.#times.rotateEveryMs);
    await this.refresh(now);
    return { kid: next.kid, activeFrom: new Date(from).toISOString() };
  }

  /**
   * Emergency revocation: the key leaves JWKS and every token it signed is refused (by every node
   * at its next refresh). If it was signing, the next key takes over at once — never an older,
   * retired key (regression test revoked-signing-key-revives-retired-key).
   */
  async revoke(kid: string, now = Date.now()): Promise<boolean> {
    await this.refresh(now);
    const wasSigning = this.#current(now)?.kid === kid;
    const next = this.#next(now);
    const at = new Date(now).toISOString();
    // One transaction: no node ever reads "revoked, and nothing promoted yet".
    const revoked = await this.#db.transaction().execute(async (trx) => {
      const result = await trx.updateTable('signing_keys').set({ revoked_at: at }).where('kid', '=', kid).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      if (wasSigning && next !== undefined && next.kid !== kid) await trx.updateTable('signing_keys').set({ active_from: at }).where('kid', '=', next.kid).execute();
      return true;
    });
    if (!revoked) return false;
    this.#onChange?.({ kind: 'revoked', kid, activeFrom: at });
    await this.ensure(now);
    return true;
  }

  /** Master-key rotation, in the caller's transaction: every private key re-encrypted under the (new) master key. */
  static async reencrypt(trx: Transaction<Database>, master: MasterKey): Promise<number> {
    const rows = await trx.selectFrom('signing_keys').select(['kid', 'private_jwk_encrypted']).execute();
    let reencrypted = 0;
    for (const row of rows) {
      const sealed = master.reencrypted(row.private_jwk_encrypted, PURPOSE);
      if (sealed === undefined) continue;
      await trx.updateTable('signing_keys').set({ private_jwk_encrypted: sealed }).where('kid', '=', row.kid).execute();
      reencrypted++;
    }
    return reencrypted;
  }

  /**
   * Keys published now: every future key, the current one, and retired ones still within
   * `retainMs` — a key retires when a later key activates, revoked or not, so revoking a key
   * never brings back the one before it (regression test revoked-signing-key-revives-retired-key).
   */
  #published(now: number): LoadedKey[] {
    const keys = this.#keys;
    return keys.filter((key, i) => {
      if (key.revoked) return false;
      if (key.activeFrom > now) return true;
      const successor = keys.slice(i + 1).find((k) => k.activeFrom > key.activeFrom && k.activeFrom <= now);
      return successor === undefined || successor.activeFrom + this.#times.retainMs > now;
    });
  }

  /** The newest key that has come into force; none while that key is revoked (the next one is promoted then). */
  #current(now: number): LoadedKey | undefined {
    let current: LoadedKey | undefined;
    for (const key of this.#keys) if (key.activeFrom <= now && key.alg === this.#alg) current = key;
    return current?.revoked === true ? undefined : current;
  }

  #next(now: number): LoadedKey | undefined {
    return this.#keys.find((k) => k.activeFrom > now && k.alg === this.#alg && !k.revoked);
  }

  async #create(now: number, activeFrom: number): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair(this.#alg, { extractable: true, ...(this.#alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    const publicJwk = await exportJWK(publicKey);
    const privateJwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
    await this.#db
      .insertInto('signing_keys')
      .values({
        kid,
        alg: this.#alg,
        public_jwk: JSON.stringify(publicJwk),
        private_jwk_encrypted: this.#master.encrypt(JSON.stringify(privateJwk), PURPOSE),
        created_at: new Date(now).toISOString(),
        active_from: new Date(activeFrom).toISOString(),
        retired_at: null,
        revoked_at: null,
      })
      .execute();
    this.#onChange?.({ kind: 'created', kid, activeFrom: new Date(activeFrom).toISOString() });
  }
}
