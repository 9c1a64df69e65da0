import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { MasterKey } from './master-key.js';

/**
 * What each server key is for. `token-hash` and `refresh-successor` key the HMACs of opaque tokens
 * (refresh tokens, invitations, recovery codes); `credential-pepper` keys the HMACs of API keys and
 * client secrets, and gets a new version at every master-key rotation (new credentials use the
 * newest; each stored hash names the version it was made with, so older ones keep working).
 */
export type SecretPurpose = 'token-hash' | 'refresh-successor' | 'credential-pepper';

const PURPOSES: readonly SecretPurpose[] = ['token-hash', 'refresh-successor', 'credential-pepper'];
/** What the encrypted values are bound to (AES-GCM associated data). */
const ENCRYPTION_PURPOSE = 'secret-keys';

export interface SecretKey {
  version: number;
  key: Buffer;
}

/**
 * The server's HMAC keys, one or more versions per purpose. Each is derived from the master key
 * (HKDF, `rampart/<purpose>/v<n>`) the first time it is needed and then kept in `secret_keys`
 * encrypted under the master key: a rotated master key re-encrypts them, and hashes made with
 * them stay valid. Every node reads the same rows, so they agree on every version.
 */
export class SecretKeys {
  readonly #db: Kysely<Database>;
  readonly #master: MasterKey;
  #keys = new Map<SecretPurpose, SecretKey[]>();

  private constructor(db: Kysely<Database>, master: MasterKey) {
    this.#db = db;
    this.#master = master;
  }

  /** Loads every version, making version 1 of a purpose that has none yet. */
  static async open(db: Kysely<Database>, master: MasterKey, now = Date.now()): Promise<SecretKeys> {
    const keys = new SecretKeys(db, master);
    await keys.refresh();
    const missing = PURPOSES.filter((p) => keys.#keys.get(p) === undefined);
    if (missing.length > 0) {
      for (const purpose of missing) await keys.#insert(db, purpose, 1, now);
      await keys.refresh();
    }
    return keys;
  }

  /** Re-reads the rows (a rotation on another node adds a pepper version). */
  async refresh(): Promise<void> {
    const rows = await this.#db.selectFrom('secret_keys').selectAll().orderBy('version', 'asc').execute();
    const keys = new Map<SecretPurpose, SecretKey[]>();
    for (const row of rows) {
      if (!(PURPOSES as readonly string[]).includes(row.purpose)) continue;
      const purpose = row.purpose as SecretPurpose;
      const list = keys.get(purpose) ?? [];
      list.push({ version: Number(row.version), key: Buffer.from(this.#master.decrypt(row.value_encrypted, ENCRYPTION_PURPOSE), 'base64') });
      keys.set(purpose, list);
    }
    this.#keys = keys;
  }

  /** The newest version: what new hashes are made with. */
  current(purpose: SecretPurpose): SecretKey {
    const list = this.#keys.get(purpose);
    if (list === undefined || list.length === 0) throw new Error(`no ${purpose} key loaded`);
    return list[list.length - 1]!;
  }

  /** A version by number, if this node knows it. */
  get(purpose: SecretPurpose, version: number): Buffer | undefined {
    return this.#keys.get(purpose)?.find((k) => k.version === version)?.key;
  }

  /** Every version, oldest first. */
  all(purpose: SecretPurpose): readonly SecretKey[] {
    return this.#keys.get(purpose) ?? [];
  }

  /**
   * Master-key rotation, in the caller's transaction: every stored key re-encrypted under the
   * (new) master key and, when any was, a new credential pepper derived from it (credentials made
   * from then on use it; older ones keep the version they name). Running it again changes nothing.
   */
  static async reencrypt(trx: Transaction<Database>, master: MasterKey, now = Date.now()): Promise<{ reencrypted: number; pepperVersion: number }> {
    const rows = await trx.selectFrom('secret_keys').selectAll().execute();
    let reencrypted = 0;
    for (const row of rows) {
      const sealed = master.reencrypted(row.value_encrypted, ENCRYPTION_PURPOSE);
      if (sealed === undefined) continue;
      await trx.updateTable('secret_keys').set({ value_encrypted: sealed }).where('purpose', '=', row.purpose).where('version', '=', row.version).execute();
      reencrypted++;
    }
    const peppers = rows.filter((r) => r.purpose === 'credential-pepper').map((r) => Number(r.version));
    const newest = peppers.length === 0 ? 0 : Math.max(...peppers);
    if (reencrypted === 0) return { reencrypted, pepperVersion: newest };
    const keys = new SecretKeys(trx, master);
    await keys.#insert(trx, 'credential-pepper', newest + 1, now);
    return { reencrypted, pepperVersion: newest + 1 };
  }

  async #insert(db: Kysely<Database>, purpose: SecretPurpose, version: number, now: number): Promise<void> {
    const value = this.#master.derive(purpose, version).toString('base64');
    // Two nodes starting at once derive the same value; the first row stays.
    await db
      .insertInto('secret_keys')
      .values({ purpose, version, value_encrypted: this.#master.encrypt(value, ENCRYPTION_PURPOSE), created_at: new Date(now).toISOString() })
      .onConflict((oc) => oc.columns(['purpose', 'version']).doNothing())
      .execute();
  }
}
