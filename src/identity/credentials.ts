import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Secrets that programs hold — API keys and OAuth client secrets — in a form secret scanners can
 * find: a fixed prefix naming the kind and the environment, 256 bits of randomness in base62, and
 * a CRC-32 checksum (base62, 6 characters), the shape GitHub's tokens made common:
 *
 *   rmp_live_<43 base62><6 base62>      API key
 *   rmpcs_live_<43 base62><6 base62>    OAuth client secret
 *
 * The checksum is no protection (anyone can compute it); it lets a scanner tell a real key from
 * look-alike text, and the gateway refuse mistyped or made-up keys without a database look-up.
 */
export type CredentialKind = 'apiKey' | 'clientSecret';
export type CredentialEnvironment = 'live' | 'test';

const PREFIX: Record<CredentialKind, string> = { apiKey: 'rmp', clientSecret: 'rmpcs' };
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 62^43 > 2^256: 43 characters carry the 256 random bits. */
const RANDOM_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
/** How many characters of a credential are kept in clear to recognise it in a list (prefix + 8). */
const SHOWN_RANDOM = 8;

const SHAPE = /^(rmp|rmpcs)_(live|test)_([0-9A-Za-z]{49})$/;

/** A new credential of this kind: 256 bits from the CSPRNG, unbiased (rejection sampling). */
export function newCredential(kind: CredentialKind, env: CredentialEnvironment): string {
  let random = '';
  while (random.length < RANDOM_LENGTH) {
    for (const byte of randomBytes(64)) {
      // 248 = 4 × 62: bytes at or above it would favour the first characters.
      if (byte < 248 && random.length < RANDOM_LENGTH) random += ALPHABET[byte % 62];
    }
  }
  const body = `${PREFIX[kind]}_${env}_${random}`;
  return body + checksum(body);
}

/** Whether the text has the shape and checksum of a credential of this kind and environment. */
export function isCredential(value: string, kind: CredentialKind, env: CredentialEnvironment): boolean {
  if (value.length > 64) return false;
  const match = SHAPE.exec(value);
  if (match === null || match[1] !== PREFIX[kind] || match[2] !== env) return false;
  const body = value.slice(0, value.length - CHECKSUM_LENGTH);
  const expected = Buffer.from(checksum(body));
  const given = Buffer.from(value.slice(value.length - CHECKSUM_LENGTH));
  return timingSafeEqual(expected, given);
}

/** Which kind of credential the text looks like (shape only), for routing a revocation. */
export function credentialKind(value: string): CredentialKind | undefined {
  const match = SHAPE.exec(value);
  if (match === null) return undefined;
  return match[1] === 'rmp' ? 'apiKey' : 'clientSecret';
}

/** The part shown in lists: `rmp_live_AbCd1234`. */
export function shownPrefix(value: string): string {
  const second = value.indexOf('_', value.indexOf('_') + 1);
  return value.slice(0, second + 1 + SHOWN_RANDOM);
}

/** HMAC-SHA-256 of a credential under a pepper, as stored (base64url). */
export function credentialHash(pepper: Buffer, value: string): string {
  return createHmac('sha256', pepper).update(value).digest('base64url');
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}
