import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify, errors, type JWTPayload } from 'jose';
import type { SecretKeys } from './secret-keys.js';
import type { SigningKeys } from './keys.js';

/** Opaque secrets (refresh tokens, invitations, one-time passwords): 256 bits, base64url. */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Hashes and derivations of opaque tokens, under server keys derived from the master key (and
 * stored encrypted under it): a copy of the database alone can neither check a token nor compute
 * a successor.
 */
export class TokenHasher {
  readonly #hashKey: Buffer;
  readonly #successorKey: Buffer;

  constructor(keys: SecretKeys) {
    // One version each, for good: these hashes are looked up, so they cannot change under them.
    this.#hashKey = keys.all('token-hash')[0]!.key;
    this.#successorKey = keys.all('refresh-successor')[0]!.key;
  }

  /** HMAC-SHA-256 of a token, as stored. */
  hash(token: string): string {
    return createHmac('sha256', this.#hashKey).update(token).digest('base64url');
  }

  /**
   * The refresh token that replaces `token`: derived, not random, so concurrent uses within the
   * grace window can all be given the same successor without it ever being stored in clear.
   */
  successor(token: string): string {
    return createHmac('sha256', this.#successorKey).update(token).digest('base64url');
  }

  /** Hashed token ids for the audit trail (never the token or its stored hash). */
  auditId(value: string): string {
    return this.hash(`audit:${value}`).slice(0, 16);
  }

  static equal(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }
}

export interface AccessClaims {
  sub: string;
  scope: string;
  roles: readonly string[];
  /** The login session (refresh-token family). */
  sid: string;
  /** How the session was authenticated (RFC 8176: `pwd`, and `otp` after a second factor). */
  amr?: readonly string[] | undefined;
}

export interface IssuedAccess {
  token: string;
  jti: string;
  /** Seconds since the epoch. */
  exp: number;
  iat: number;
}

/** Access tokens per RFC 9068 (`typ: at+jwt`), and the narrow password-change token. */
export class AccessTokens {
  readonly #keys: SigningKeys;
  readonly issuer: string;
  readonly audience: string[];
  readonly clientId: string;
  readonly ttlSeconds: number;

  constructor(keys: SigningKeys, options: { issuer: string; audience: string[]; clientId: string; ttlMs: number }) {
    this.#keys = keys;
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.clientId = options.clientId;
    this.ttlSeconds = Math.floor(options.ttlMs / 1000);
  }

  async issue(claims: AccessClaims, now = Date.now()): Promise<IssuedAccess> {
    return this.#sign({ client_id: this.clientId, scope: claims.scope, roles: [...claims.roles], sid: claims.sid, ...(claims.amr !== undefined ? { amr: [...claims.amr] } : {}) }, claims.sub, this.ttlSeconds, now);
  }

  /** One RFC 9068 access token: `typ: at+jwt`, the current key, this issuer and audience, a fresh `jti`. */
  async #sign(claims: Record<string, unknown>, sub: string, ttlSeconds: number, now: number): Promise<IssuedAccess> {
    const signer = this.#keys.signer();
    const jti = randomUUID();
    // Millisecond `iat` (RFC 7519 allows fractions): a token issued just after "log out
    // everywhere" is not caught by a not-before time of the same second.
    const iat = Math.floor(now) / 1000;
    const exp = Math.floor(now / 1000) + ttlSeconds;
    const token = await new SignJWT({ ...claims, iat })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject(sub)
      .setAudience(this.audience.length === 1 ? this.audience[0]! : this.audience)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(signer.key);
    return { token, jti, exp, iat };
  }

  /**
   * An access token for an OAuth client (client credentials grant): `sub` is `client:<id>`, so it
   * can never be taken for a user's; no roles, no session; its lifetime is the client's.
   */
  async issueForClient(clientId: string, scope: string, ttlSeconds: number, now = Date.now()): Promise<IssuedAccess> {
    return this.#sign({ client_id: clientId, scope }, `client:${clientId}`, ttlSeconds, now);
  }

  /**
   * An access token of this service, verified (signature by a published key, issuer, audience,
   * `typ: at+jwt`, not expired, no clock skew); undefined when it is not one. Revocation is the
   * caller's to check. For introspection and revocation (RFC 7662, RFC 7009).
   */
  async verifyAccess(token: string, options: { allowExpired?: boolean } = {}): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, (header) => Promise.resolve(this.#keys.verificationKey(header.kid)), {
        issuer: this.issuer,
        audience: this.audience,
        typ: 'at+jwt',
        algorithms: ['EdDSA', 'ES256'],
        requiredClaims: ['exp', 'sub', 'jti', 'client_id'],
        // Revoking a token that just expired is a no-op, but must not fail.
        ...(options.allowExpired === true ? { currentDate: new Date(0) } : {}),
      });
      return payload;
    } catch (error) {
      if (error instanceof errors.JOSEError) return undefined;
      throw error;
    }
  }

  /** A token that can only set a new password (after login with a one-time password): 5 minutes. */
  async issuePasswordChange(sub: string, binding: string, now = Date.now()): Promise<{ token: string; jti: string; exp: number }> {
    const signer = this.#keys.signer();
    const jti = randomUUID();
    const exp = Math.floor(now / 1000) + 300;
    const token = await new SignJWT({ purpose: 'password-change', pwb: binding })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'rampart-pwc+jwt' })
      .setIssuer(this.issuer)
      .setSubject(sub)
      .setAudience(`${this.issuer}#password-change`)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(signer.key);
    return { token, jti, exp };
  }

  /**
   * Verifies a password-change token; undefined when it is not one (or expired). `binding` is the
   * keyed hash of the one-time password's hash it was issued for.
   */
  async verifyPasswordChange(token: string): Promise<{ sub: string; jti: string; exp: number; binding: string } | undefined> {
    try {
      const { payload } = await jwtVerify(token, (header) => Promise.resolve(this.#keys.verificationKey(header.kid)), {
        issuer: this.issuer,
        audience: `${this.issuer}#password-change`,
        typ: 'rampart-pwc+jwt',
        algorithms: ['EdDSA', 'ES256'],
        requiredClaims: ['exp', 'sub', 'jti'],
      });
      return isPasswordChange(payload) ? { sub: payload.sub!, jti: payload.jti!, exp: payload.exp!, binding: payload.pwb as string } : undefined;
    } catch (error) {
      if (error instanceof errors.JOSEError) return undefined;
      throw error;
    }
  }
}

function isPasswordChange(payload: JWTPayload): boolean {
  return payload.purpose === 'password-change' && typeof payload.pwb === 'string' && typeof payload.sub === 'string' && typeof payload.jti === 'string' && typeof payload.exp === 'number';
}
