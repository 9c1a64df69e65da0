import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The master key everything secret at rest hangs from: signing keys are encrypted under a key
 * derived from it (HKDF-SHA-256, one per purpose and version), API-key peppers derive from it too.
 * Production must give it (`${file:…}`); development may generate one into `dataDir` (announced
 * loudly by the caller), never production.
 */
export class MasterKey {
  /** A short fingerprint, for logs (never the key). */
  readonly id: string;
  readonly #secret: Buffer;
  /**
   * Keys being rotated away from (`identity.previousMasterKeys`): they still decrypt, never
   * encrypt, until `rampart keys rotate-master` has re-encrypted everything under this one.
   */
  readonly #previous: readonly MasterKey[];

  constructor(secret: Buffer, previous: readonly Buffer[] = []) {
    if (secret.length < 32) throw new Error('the master key must be at least 32 bytes (base64 of 32 random bytes)');
    this.#secret = secret;
    this.id = createHash('sha256').update(secret).digest('base64url').slice(0, 10);
    this.#previous = previous.map((p) => new MasterKey(p));
    if (this.#previous.some((p) => p.id === this.id)) throw new Error('a previous master key is the same as the master key');
  }

  /** Whether keys being rotated away from were given. */
  get rotating(): boolean {
    return this.#previous.length > 0;
  }

  /** A 32-byte key for one purpose and version (`signing-keys`, `api-key-pepper`, …). */
  derive(purpose: string, version = 1): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#secret, Buffer.alloc(0), `rampart/${purpose}/v${version}`, 32));
  }

  /** AES-256-GCM under the purpose's key; the purpose is bound as associated data. Format `v1.<iv>.<ciphertext+tag>`. */
  encrypt(plaintext: string, purpose: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.derive(purpose), iv);
    cipher.setAAD(Buffer.from(purpose));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /**
   * Decrypts under this key or, failing that, a previous one. Throws when none of them encrypted
   * the text for this purpose (or it was altered).
   */
  decrypt(ciphertext: string, purpose: string): string {
    try {
      return this.decryptCurrent(ciphertext, purpose);
    } catch (error) {
      for (const previous of this.#previous) {
        try {
          return previous.decryptCurrent(ciphertext, purpose);
        } catch {
          // next one
        }
      }
      throw error;
    }
  }

  /**
   * For a master-key rotation: the text encrypted anew under this key when a previous key had
   * encrypted it; undefined when this key already had (nothing to do). Throws when no key opens it.
   */
  reencrypted(ciphertext: string, purpose: string): string | undefined {
    if (this.isCurrent(ciphertext, purpose)) return undefined;
    return this.encrypt(this.decrypt(ciphertext, purpose), purpose);
  }

  /** Whether this key (not a previous one) encrypted the text. */
  isCurrent(ciphertext: string, purpose: string): boolean {
    try {
      this.decryptCurrent(ciphertext, purpose);
      return true;
    } catch {
      return false;
    }
  }

  /** Throws when the text was not encrypted by this very key for this purpose (or was altered). */
  decryptCurrent(ciphertext: string, purpose: string): string {
    const [version, ivText, bodyText] = ciphertext.split('.');
    if (version !== 'v1' || ivText === undefined || bodyText === undefined) throw new Error('not a v1 ciphertext');
    const body = Buffer.from(bodyText, 'base64url');
    if (body.length < 16) throw new Error('ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', this.derive(purpose), Buffer.from(ivText, 'base64url'));
    decipher.setAAD(Buffer.from(purpose));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
  }
}

/**
 * The configured master key (base64), or in development one kept in `<dataDir>/master.key`
 * (created with mode 0600 on first use). Production without a configured key is an error.
 */
export function loadMasterKey(options: { configured: string | undefined; previous?: readonly string[] | undefined; mode: 'production' | 'development'; dataDir: string }): { key: MasterKey; generated: boolean; file: string | undefined } {
  const previous = (options.previous ?? []).map((p) => Buffer.from(p.trim(), 'base64'));
  if (options.configured !== undefined) return { key: new MasterKey(Buffer.from(options.configured.trim(), 'base64'), previous), generated: false, file: undefined };
  if (previous.length > 0) throw new Error('identity.previousMasterKeys needs identity.masterKey (the key rotated to)');
  if (options.mode !== 'development') throw new Error('identity.masterKey is required in production (base64 of 32 random bytes, e.g. ${file:/run/secrets/rampart-master-key})');
  const file = join(options.dataDir, 'master.key');
  try {
    return { key: new MasterKey(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')), generated: false, file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${secret.toString('base64')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return { key: new MasterKey(secret), generated: true, file };
}
