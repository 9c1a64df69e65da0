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

  constructor(secret: Buffer) {
    if (secret.length < 32) throw new Error('the master key must be at least 32 bytes (base64 of 32 random bytes)');
    this.#secret = secret;
    this.id = createHash('sha256').update(secret).digest('base64url').slice(0, 10);
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

  /** Throws when the text was not encrypted by this key for this purpose (or was altered). */
  decrypt(ciphertext: string, purpose: string): string {
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
export function loadMasterKey(options: { configured: string | undefined; mode: 'production' | 'development'; dataDir: string }): { key: MasterKey; generated: boolean; file: string | undefined } {
  if (options.configured !== undefined) return { key: new MasterKey(Buffer.from(options.configured.trim(), 'base64')), generated: false, file: undefined };
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
