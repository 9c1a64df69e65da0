import { createPublicKey, X509Certificate, type JsonWebKey as NodeJsonWebKey, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, errors, type JWK, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput, type CryptoKey } from 'jose';
import { RampartError } from '../../errors/problem.js';

export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | KeyObject | Uint8Array>;

/**
 * A remote JWKS: fetched with a timeout, used for `refresh`, fetched again at most once per
 * `cooldown` when a token names an unknown `kid`, and kept for `staleIfError` while the issuer
 * cannot be reached. Key selection is jose's (`createLocalJWKSet`).
 */
export class RemoteJwks {
  readonly #url: string;
  readonly #refreshMs: number;
  readonly #cooldownMs: number;
  readonly #timeoutMs: number;
  readonly #staleMs: number;
  #set: ReturnType<typeof createLocalJWKSet> | undefined;
  #fetchedAt = 0;
  #unknownKidFetchAt = -Infinity;
  #inflight: Promise<void> | undefined;
  /** Bumped whenever the key set changes: tokens verified with an older set are verified again. */
  generation = 0;
  #text: string | undefined;

  constructor(url: string, options: { refreshMs: number; cooldownMs: number; timeoutMs: number; staleMs: number }) {
    this.#url = url;
    this.#refreshMs = options.refreshMs;
    this.#cooldownMs = options.cooldownMs;
    this.#timeoutMs = options.timeoutMs;
    this.#staleMs = options.staleMs;
  }

  /** The keys are due to be fetched again (a cached token is then verified again, refreshing them). */
  due(now: number): boolean {
    return this.#set === undefined || now - this.#fetchedAt > this.#refreshMs;
  }

  readonly resolve: KeyResolver = async (header, token) => {
    const now = Date.now();
    if (this.#set === undefined || now - this.#fetchedAt > this.#refreshMs) await this.#refresh(now, true);
    try {
      return await this.#set!(header, token);
    } catch (error) {
      // An unknown kid may be a rotation: fetch again, at most once per cooldown.
      // The cooldown counts from the last such fetch, not from a scheduled one: a key rotated in
      // just after a scheduled fetch is still picked up at once.
      if (!(error instanceof errors.JWKSNoMatchingKey) || now - this.#unknownKidFetchAt < this.#cooldownMs) throw error;
      this.#unknownKidFetchAt = now;
      await this.#refresh(now, false);
      return this.#set!(header, token);
    }
  };

  async #refresh(now: number, needed: boolean): Promise<void> {
    this.#inflight ??= this.#fetch().finally(() => (this.#inflight = undefined));
    try {
      await this.#inflight;
    } catch (error) {
      const usable = this.#set !== undefined && now - this.#fetchedAt <= this.#refreshMs + this.#staleMs;
      if (needed && !usable) {
        throw new RampartError('RMP_AUTH_UNAVAILABLE', { detail: 'The keys to check the token cannot be fetched.', headers: { 'retry-after': '5' }, cause: error });
      }
    }
  }

  async #fetch(): Promise<void> {
    const response = await fetch(this.#url, { signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`JWKS ${this.#url} answered ${response.status}`);
    const text = await response.text();
    if (text.length > 1_048_576) throw new Error(`JWKS ${this.#url} is larger than 1 MiB`);
    const jwks = JSON.parse(text) as JSONWebKeySet;
    if (jwks === null || typeof jwks !== 'object' || !Array.isArray(jwks.keys)) throw new Error(`JWKS ${this.#url} has no "keys" list`);
    this.#set = createLocalJWKSet(jwks);
    this.#fetchedAt = Date.now();
    if (text !== this.#text) {
      this.#text = text;
      this.generation++;
    }
  }
}

/**
 * Static keys (PEM public keys, certificates or public JWKs), imported at config load with
 * node:crypto; jose refuses a key whose type does not fit the token's algorithm.
 */
export function staticKeys(texts: readonly string[]): KeyResolver {
  const keys: { kid: string | undefined; key: KeyObject }[] = texts.map((text) => {
    const t = text.trim();
    if (t.startsWith('{')) {
      const jwk = JSON.parse(t) as JWK;
      if (jwk.d !== undefined || jwk.k !== undefined) throw new Error('publicKeys holds a private or secret JWK: give the public key only');
      return { kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, key: createPublicKey({ key: jwk as NodeJsonWebKey, format: 'jwk' }) };
    }
    if (t.includes('PRIVATE KEY')) throw new Error('publicKeys holds a private key: give the public key only');
    if (t.includes('BEGIN CERTIFICATE')) return { kid: undefined, key: new X509Certificate(t).publicKey };
    return { kid: undefined, key: createPublicKey(t) };
  });
  if (keys.some((k) => k.key.type !== 'public')) throw new Error('publicKeys must hold public keys');
  return (header) => {
    const match = keys.filter((k) => header.kid === undefined || k.kid === undefined || k.kid === header.kid);
    if (match.length === 0) return Promise.reject(new errors.JWKSNoMatchingKey());
    return Promise.resolve(match[0]!.key);
  };
}
