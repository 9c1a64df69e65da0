import * as OTPAuth from 'otpauth';
import { describe, expect, it } from 'vitest';
import { generateSecret, otpauthUri, qrCodeDataUrl, timeStep, verify, type TotpParameters } from './totp.js';

/** RFC 6238 Appendix B: the seeds are ASCII, 20, 32 and 64 bytes for SHA-1, SHA-256 and SHA-512; 8 digits, 30-second steps. */
const SEEDS: Record<TotpParameters['algorithm'], string> = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
};
/** [Unix time (s), T (hex), SHA1, SHA256, SHA512], as printed in the RFC. */
const VECTORS: [number, string, string, string, string][] = [
  [59, '0000000000000001', '94287082', '46119246', '90693936'],
  [1111111109, '00000000023523EC', '07081804', '68084774', '25091201'],
  [1111111111, '00000000023523ED', '14050471', '67062674', '99943326'],
  [1234567890, '000000000273EF07', '89005924', '91819424', '93441116'],
  [2000000000, '0000000003F940AA', '69279037', '90698825', '38618901'],
  [20000000000, '0000000027BC86AA', '65353130', '77737706', '47863826'],
];
const base32 = (ascii: string) => OTPAuth.Secret.fromLatin1(ascii).base32;

describe('TOTP (our wrapper over otpauth)', () => {
  it('passes every RFC 6238 Appendix B test vector (SHA1, SHA256, SHA512; 8 digits; all six times), giving the RFC\'s time step', () => {
    let checked = 0;
    for (const [time, hexStep, ...codes] of VECTORS) {
      const algorithms = ['SHA1', 'SHA256', 'SHA512'] as const;
      algorithms.forEach((algorithm, i) => {
        const parameters = { algorithm, digits: 8, period: 30 };
        const step = verify(base32(SEEDS[algorithm]), codes[i]!, time * 1000, parameters);
        expect(step, `${algorithm} at ${time}`).toBe(parseInt(hexStep, 16));
        // The same code under another algorithm's seed is not accepted.
        const other = algorithms[(i + 1) % 3]!;
        expect(verify(base32(SEEDS[other]), codes[i]!, time * 1000, { ...parameters, algorithm: other })).toBeUndefined();
        checked++;
      });
    }
    expect(checked).toBe(18);
  });

  it('accepts a code one step either side of now (and says which step), refuses two steps away', () => {
    const secret = base32(SEEDS.SHA1);
    const parameters = { algorithm: 'SHA1', digits: 8, period: 30 } as const;
    const at = 1111111109_000; // step 0x23523EC, code 07081804
    expect(verify(secret, '07081804', at, parameters)).toBe(0x23523ec);
    expect(verify(secret, '07081804', at + 30_000, parameters)).toBe(0x23523ec);
    expect(verify(secret, '07081804', at - 30_000, parameters)).toBe(0x23523ec);
    expect(verify(secret, '07081804', at + 60_000, parameters)).toBeUndefined();
    expect(verify(secret, '07081804', at - 60_000, parameters)).toBeUndefined();
    // The next step's code (1111111111 is one step later) is that step, seen from the previous one.
    expect(verify(secret, '14050471', at, parameters)).toBe(0x23523ed);
  });

  it('defaults to what authenticator apps use (SHA-1, 6 digits, 30 s) and refuses malformed codes', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 20 bytes in base32
    expect(Buffer.from(OTPAuth.Secret.fromBase32(secret).bytes).length).toBe(20);
    expect(generateSecret()).not.toBe(secret);
    const now = 1_760_000_000_000;
    const code = OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), timestamp: now });
    expect(code).toMatch(/^[0-9]{6}$/);
    expect(verify(secret, code, now)).toBe(timeStep(now));
    expect(timeStep(now)).toBe(Math.floor(now / 30_000));
    for (const bad of ['', ' ', code.slice(0, 5), `${code}0`, `${code.slice(0, 5)}a`, `-${code.slice(1)}`, '１２３４５６', `${code}\n`]) {
      expect(verify(secret, bad, now), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('makes the otpauth key URI with the issuer and account, and a QR code of it as a GIF data URL', () => {
    const secret = generateSecret();
    const uri = otpauthUri(secret, 'Rampart Dev', 'ada@example.com');
    expect(uri).toBe(`otpauth://totp/Rampart%20Dev:ada%40example.com?issuer=Rampart%20Dev&secret=${secret}&algorithm=SHA1&digits=6&period=30`);
    // An app reading it gets the same parameters back.
    const parsed = OTPAuth.URI.parse(uri) as OTPAuth.TOTP;
    expect([parsed.issuer, parsed.label, parsed.secret.base32, parsed.digits, parsed.period]).toEqual(['Rampart Dev', 'ada@example.com', secret, 6, 30]);
    const qr = qrCodeDataUrl(uri);
    expect(qr).toMatch(/^data:image\/gif;base64,R0lGOD/);
    expect(Buffer.from(qr.split(',')[1]!, 'base64').subarray(0, 6).toString('latin1')).toMatch(/^GIF8[79]a$/);
  });
});
