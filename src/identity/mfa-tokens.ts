import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors, type JWTPayload } from 'jose';
import type { SigningKeys } from './keys.js';

/**
 * What an MFA token lets its holder do during login: `mfa`, give a code (TOTP or recovery) at
 * `/api/v1/auth/mfa`; `mfa-enrol`, set up TOTP at `/api/v1/auth/mfa-enrol[-confirm]` (the account
 * has a role in `identity.mfa.requireForRoles` and no second factor yet).
 */
export type MfaPurpose = 'mfa' | 'mfa-enrol';

const PURPOSES: readonly string[] = ['mfa', 'mfa-enrol'] satisfies MfaPurpose[];

/** How long the second step of a login may take. */
export const MFA_TOKEN_TTL_S = 300;

export interface MfaTokenClaims {
  sub: string;
  jti: string;
  /** Seconds since the epoch. */
  exp: number;
  purpose: MfaPurpose;
  /** The keyed hash of the password hash it was issued for: a password change or reset voids it. */
  binding: string;
}

/**
 * The token login answers with when a second factor is needed: a JWT of its own type
 * (`rampart-mfa+jwt`) and audience (`<issuer>#mfa`), so neither the `jwt` policy nor the
 * password-change endpoint takes it, and no access token is taken here. Single use: the login
 * that succeeds with it records `mfa:<jti>` in `revoked_tokens`.
 */
export class MfaTokens {
  readonly #keys: SigningKeys;
  readonly #issuer: string;
  readonly #audience: string;

  constructor(keys: SigningKeys, issuer: string) {
    this.#keys = keys;
    this.#issuer = issuer;
    this.#audience = `${issuer}#mfa`;
  }

  async issue(sub: string, purpose: MfaPurpose, binding: string, now = Date.now()): Promise<{ token: string; jti: string; exp: number }> {
    const signer = this.#keys.signer();
    const jti = randomUUID();
    const exp = Math.floor(now / 1000) + MFA_TOKEN_TTL_S;
    const token = await new SignJWT({ purpose, pwb: binding })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'rampart-mfa+jwt' })
      .setIssuer(this.#issuer)
      .setSubject(sub)
      .setAudience(this.#audience)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(signer.key);
    return { token, jti, exp };
  }

  /** The claims of a valid MFA token for `purpose`; undefined for anything else (expired included). */
  async verify(token: string, purpose: MfaPurpose, now = Date.now()): Promise<MfaTokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, (header) => Promise.resolve(this.#keys.verificationKey(header.kid)), {
        issuer: this.#issuer,
        audience: this.#audience,
        typ: 'rampart-mfa+jwt',
        algorithms: ['EdDSA', 'ES256'],
        requiredClaims: ['exp', 'sub', 'jti'],
        currentDate: new Date(now),
      });
      if (!isMfaToken(payload) || payload.purpose !== purpose) return undefined;
      return { sub: payload.sub!, jti: payload.jti!, exp: payload.exp!, purpose, binding: payload.pwb as string };
    } catch (error) {
      if (error instanceof errors.JOSEError) return undefined;
      throw error;
    }
  }
}

function isMfaToken(payload: JWTPayload): boolean {
  return typeof payload.purpose === 'string' && PURPOSES.includes(payload.purpose) && typeof payload.pwb === 'string' && typeof payload.sub === 'string' && typeof payload.jti === 'string' && typeof payload.exp === 'number';
}
