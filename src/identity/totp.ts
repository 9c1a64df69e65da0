import * as OTPAuth from 'otpauth';
import qrcode from 'qrcode-generator';

/**
 * TOTP (RFC 6238) through the `otpauth` library: this module only fixes the parameters and the
 * window, and turns a match into the time step it was for (what replay protection compares).
 * Authenticator apps agree on SHA-1, 6 digits and 30 seconds; the other parameters exist for the
 * RFC's test vectors.
 */
export interface TotpParameters {
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  digits: number;
  /** Seconds per time step. */
  period: number;
}

export const TOTP_DEFAULTS: Readonly<TotpParameters> = Object.freeze({ algorithm: 'SHA1', digits: 6, period: 30 });

/** Steps either side of the current one that are accepted (clock drift, a code typed at the turn). */
export const TOTP_WINDOW = 1;

/** A new secret: 20 random bytes (160 bits, RFC 4226's recommended length), base32 without padding. */
export function generateSecret(): string {
  return new OTPAuth.Secret({ size: 20 }).base32;
}

/** The time step `now` (milliseconds) falls in. */
export function timeStep(now: number, period = TOTP_DEFAULTS.period): number {
  return OTPAuth.TOTP.counter({ period, timestamp: now });
}

/**
 * The time step a code belongs to, if it is right for `now` or one step either side; undefined
 * otherwise (a code of another length, or not only digits, included). The library compares in
 * constant time. Whether the step was already used is the caller's question.
 */
export function verify(secret: string, code: string, now: number, parameters: TotpParameters = TOTP_DEFAULTS): number | undefined {
  if (!/^[0-9]+$/.test(code) || code.length !== parameters.digits) return undefined;
  const delta = OTPAuth.TOTP.validate({
    token: code,
    secret: OTPAuth.Secret.fromBase32(secret),
    algorithm: parameters.algorithm,
    digits: parameters.digits,
    period: parameters.period,
    timestamp: now,
    window: TOTP_WINDOW,
  });
  return delta === null ? undefined : timeStep(now, parameters.period) + delta;
}

/**
 * The `otpauth://totp/…` key URI authenticator apps read: `issuer` (identity.mfa.issuer) as the
 * issuer and label prefix, the account (the e-mail address) as the label.
 */
export function otpauthUri(secret: string, issuer: string, account: string): string {
  return new OTPAuth.TOTP({ issuer, label: account, secret: OTPAuth.Secret.fromBase32(secret), ...TOTP_DEFAULTS }).toString();
}

/** The key URI as a QR code: a `data:image/gif;base64,…` URL (error correction M, 4 px cells, quiet zone of 4 cells). */
export function qrCodeDataUrl(uri: string): string {
  const qr = qrcode(0, 'M');
  qr.addData(uri);
  qr.make();
  return qr.createDataURL(4, 16);
}
