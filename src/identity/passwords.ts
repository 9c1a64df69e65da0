import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { RampartError } from '../errors/problem.js';

/**
 * Passwords, as OWASP ASVS 5.0 level 2 asks: Argon2id (parameters kept in the hash, rehashed on
 * login when weaker than configured), 8–256 characters with no composition rules and never
 * truncated, a 1 KiB byte cap against hash DoS, refused when common (49 233 entries from
 * @zxcvbn-ts/language-common, MIT) or when it contains the user's e-mail name or the product name.
 */

export interface Argon2Params {
  /** KiB; at least 19456. */
  memoryCost: number;
  /** At least 2. */
  timeCost: number;
  parallelism: number;
}

/** `Algorithm.Argon2id` of @node-rs/argon2 (a const enum, which isolated modules cannot import). */
const ARGON2ID = 2;

export const MIN_ARGON2: Argon2Params = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export type PasswordProblem = 'RMP_PASSWORD_TOO_SHORT' | 'RMP_PASSWORD_TOO_LONG' | 'RMP_PASSWORD_COMMON' | 'RMP_PASSWORD_CONTAINS_IDENTITY';

const COMMON = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
const MAX_LENGTH = 256;
const MAX_BYTES = 1024;

/** Why a new password is refused, or undefined when it is acceptable. */
export function passwordProblem(password: string, options: { minLength: number; email?: string | undefined }): PasswordProblem | undefined {
  const length = [...password].length; // code points, as a user counts them
  if (length < options.minLength) return 'RMP_PASSWORD_TOO_SHORT';
  if (length > MAX_LENGTH || Buffer.byteLength(password, 'utf8') > MAX_BYTES) return 'RMP_PASSWORD_TOO_LONG';
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'RMP_PASSWORD_COMMON';
  const name = options.email?.split('@')[0]?.toLowerCase();
  if ((name !== undefined && name.length >= 3 && lower.includes(name)) || lower.includes('rampart')) return 'RMP_PASSWORD_CONTAINS_IDENTITY';
  return undefined;
}

/**
 * Hashing on a bounded queue: at most `concurrency` Argon2 computations at once (each holds
 * `memoryCost` KiB and a thread), at most `queue` waiting; past that, 503 `RMP_OVERLOADED` at once
 * — a login flood cannot starve proxying or exhaust memory.
 */
export class PasswordHasher {
  readonly params: Argon2Params;
  readonly #concurrency: number;
  readonly #queueLimit: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  /** A hash of a random password: verified against when the user does not exist, so timing does not tell. */
  #dummy: Promise<string> | undefined;

  constructor(params: Argon2Params = MIN_ARGON2, options: { concurrency?: number; queue?: number } = {}) {
    if (params.memoryCost < MIN_ARGON2.memoryCost || params.timeCost < MIN_ARGON2.timeCost || params.parallelism < 1) {
      throw new Error(`Argon2id parameters below the minimum (m=${MIN_ARGON2.memoryCost} KiB, t=${MIN_ARGON2.timeCost}, p=1)`);
    }
    this.params = params;
    this.#concurrency = options.concurrency ?? 2;
    this.#queueLimit = options.queue ?? 64;
  }

  hash(password: string): Promise<string> {
    this.#guard(password);
    return this.#slot(() => argon2Hash(password, { ...this.params, algorithm: ARGON2ID }));
  }

  /**
   * Checks a password against a stored hash (or, for an unknown user, against a dummy hash, with
   * the same cost). `rehash` says the stored hash is weaker than the configured parameters.
   */
  async verify(stored: string | undefined, password: string): Promise<{ ok: boolean; rehash: boolean }> {
    if (Buffer.byteLength(password, 'utf8') > MAX_BYTES) return { ok: false, rehash: false };
    if (stored === undefined) {
      this.#dummy ??= argon2Hash(crypto.randomUUID(), { ...this.params, algorithm: ARGON2ID });
      const dummy = await this.#dummy;
      await this.#slot(() => argon2Verify(dummy, password));
      return { ok: false, rehash: false };
    }
    const ok = await this.#slot(() => argon2Verify(stored, password).catch(() => false));
    return { ok, rehash: ok && this.needsRehash(stored) };
  }

  /** Whether a stored hash is not Argon2id or uses weaker parameters than configured. */
  needsRehash(stored: string): boolean {
    const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
    if (m === null) return true;
    return Number(m[1]) < this.params.memoryCost || Number(m[2]) < this.params.timeCost || Number(m[3]) < this.params.parallelism;
  }

  #guard(password: string): void {
    if (Buffer.byteLength(password, 'utf8') > MAX_BYTES) throw new RampartError('RMP_PASSWORD_TOO_LONG');
  }

  async #slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#queueLimit) {
        throw new RampartError('RMP_OVERLOADED', { detail: 'Too many password checks at once.', headers: { 'retry-after': '1' } });
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#running++;
    try {
      return await work();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}
