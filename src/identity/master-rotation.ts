import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import { SigningKeys } from './keys.js';
import type { MasterKey } from './master-key.js';
import { Mfa } from './mfa.js';
import { SecretKeys } from './secret-keys.js';

export interface MasterRotation {
  signingKeys: number;
  totpSecrets: number;
  serverKeys: number;
  /** The credential pepper new API keys and client secrets are hashed with from now on. */
  pepperVersion: number;
}

/**
 * `rampart keys rotate-master`: everything encrypted under a previous master key
 * (`identity.previousMasterKeys`) is re-encrypted under `identity.masterKey`, in one transaction —
 * private signing keys, TOTP secrets, and the server keys that hash refresh tokens, invitations,
 * recovery codes, API keys and client secrets (so none of those changes: every credential keeps
 * working). A new credential pepper is derived from the new master key for credentials made from
 * now on. All or nothing: a value no configured key decrypts aborts it with nothing changed.
 */
export async function rotateMasterKey(db: Kysely<Database>, master: MasterKey, now = Date.now()): Promise<MasterRotation> {
  if (!master.rotating) throw new Error('identity.previousMasterKeys is empty: set the new key as identity.masterKey and the old one in identity.previousMasterKeys first');
  return db.transaction().execute(async (trx) => {
    const signingKeys = await SigningKeys.reencrypt(trx, master);
    const totpSecrets = await Mfa.reencrypt(trx, master);
    const server = await SecretKeys.reencrypt(trx, master, now);
    return { signingKeys, totpSecrets, serverKeys: server.reencrypted, pepperVersion: server.pepperVersion };
  });
}
