import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { send } from '../../../test/helpers/http.js';
import { detectSecrets } from './policy.js';
import { mask, scan, type Kinds } from './scanners.js';

const use = closeAfterEach(afterEach);
const ALL: Kinds = { card: true, privateKey: true, cloudKey: true, jwt: true };
const DEFAULT: Kinds = { card: true, privateKey: true, cloudKey: true, jwt: false };
const masked = (s: string, kinds = ALL) => {
  const findings = scan(s, kinds);
  return findings === undefined ? s : mask(s, findings);
};

const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcd==\n-----END RSA PRIVATE KEY-----';

describe('detect: scanners', () => {
  it('card numbers: Luhn-valid with a plausible issuer, grouped or not; the last four stay', () => {
    expect(masked('4111111111111111')).toBe('************1111');
    expect(masked('4111 1111 1111 1111')).toBe('**** **** **** 1111');
    expect(masked('5555-5555-5555-4444')).toBe('****-****-****-4444');
    expect(masked('Amex 3782 822463 10005 on file')).toBe('Amex **** ****** *0005 on file');
    expect(masked('paid with 2223003122003222.')).toBe('paid with ************3222.');
    expect(masked('4222222222222')).toBe('*********2222');
  });

  it('card numbers: kept when the checksum fails, the issuer is implausible, or it is part of something else', () => {
    for (const value of [
      '4111 1111 1111 1112', // Luhn fails
      '1234567812345670', // Luhn passes, issuer 1 (timestamps, ids)
      '8111111111111116',
      '41111111111111111111111', // 23 digits
      'id-4111111111111111x', // glued to a letter
      '4111111111111111.5', // a decimal
      '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1', // single digits spaced out
      '2024-01-15T10:00:00Z 1700000000000',
      '411111111111', // 12 digits
    ]) {
      expect(masked(value), value).toBe(value);
    }
  });

  it('PEM private keys through their END line (or the end of the value); certificates and public keys stay', () => {
    expect(masked(`key:\n${PEM}\nrest`)).toBe('key:\n[REDACTED:privateKey]\nrest');
    expect(masked('-----BEGIN PRIVATE KEY-----\nMIIEvQ... truncated')).toBe('[REDACTED:privateKey]');
    expect(masked('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----')).toBe('[REDACTED:privateKey]');
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    expect(masked(cert)).toBe(cert);
    const pub = '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----';
    expect(masked(pub)).toBe(pub);
  });

  it('cloud access keys from the table, with exact shapes', () => {
    const cases: [string, string][] = [
      ['AKIAIOSFODNN7EXAMPLE', '[REDACTED:cloudKey]'],
      ['aws_access_key_id=ASIAIOSFODNN7EXAMPLE\n', 'aws_access_key_id=[REDACTED:cloudKey]\n'],
      [`ghp_${'a'.repeat(36)}`, '[REDACTED:cloudKey]'],
      [`github_pat_${'A1_'.repeat(20)}`, '[REDACTED:cloudKey]'],
      ['xoxb-123456789012-abcdefghij', '[REDACTED:cloudKey]'],
      [`Bearer sk_live_${'x'.repeat(24)}`, 'Bearer [REDACTED:cloudKey]'],
      [`AIza${'B'.repeat(35)}`, '[REDACTED:cloudKey]'],
    ];
    for (const [value, expected] of cases) expect(masked(value), value).toBe(expected);
    for (const value of ['AKIAIOSFODNN7EXAMPL', 'AKIAIOSFODNN7EXAMPLEX', 'XAKIAIOSFODNN7EXAMPLE', `ghp_${'a'.repeat(20)}`, `sk_test_${'x'.repeat(24)}`, `AIza${'B'.repeat(34)}`, 'the AKIA prefix alone']) {
      expect(masked(value), value).toBe(value);
    }
  });

  it('JWTs: a header that decodes to JSON with alg; off in the default kinds', async () => {
    const jwt = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('k'.repeat(32)));
    expect(masked(jwt)).toBe('[REDACTED:jwt]');
    expect(masked(`Bearer ${jwt}`)).toBe('Bearer [REDACTED:jwt]');
    expect(masked(jwt, DEFAULT)).toBe(jwt);
    const noAlg = `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.eyJzdWIiOiJhIn0.sig`;
    expect(masked(noAlg)).toBe(noAlg);
    expect(masked('eyJhbGciOiJIUzI1NiJ9 not a token')).toBe('eyJhbGciOiJIUzI1NiJ9 not a token');
  });

  it('walks values at any depth (arrays too), never keys, and reports paths', () => {
    const doc = { '4111111111111111': 'key stays', a: [{ b: ['x', 'card 4111-1111-1111-1111'] }], n: 4111111111111111, c: { d: PEM } };
    const found = detectSecrets(doc, DEFAULT)!;
    expect(found.paths).toEqual(['$.c.d', '$.a[0].b[1]']);
    expect([...found.kinds].sort()).toEqual(['card', 'privateKey']);
    expect(doc).toEqual({ '4111111111111111': 'key stays', a: [{ b: ['x', 'card ****-****-****-1111'] }], n: 4111111111111111, c: { d: '[REDACTED:privateKey]' } });
    expect(detectSecrets({ a: 'nothing here at all', b: [1, null, true] }, DEFAULT)).toBeUndefined();
  });

  it('costs little on a large answer: 1 MiB of strings in well under a second', () => {
    const doc = { items: Array.from({ length: 10_000 }, (_, i) => ({ id: `item-${i}`, text: `a sentence of some length with numbers ${i} 2024-01-01 and words`.repeat(2) })) };
    const started = performance.now();
    expect(detectSecrets(doc, ALL)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('detect policy', () => {
  it('is on by default for cards, private keys and cloud keys; a JWT passes unless jwt is on', async () => {
    const jwt = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('k'.repeat(32)));
    const up = await use.upstream((_req, res) => {
      const text = JSON.stringify({ card: '4111 1111 1111 1111', order: '4111 1111 1111 1112', key: PEM, session: jwt });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [
        { name: 'default', match: { path: '/api/*' }, upstream: 'app' },
        { name: 'jwt', match: { path: '/jwt/*' }, upstream: 'app', policies: { detect: { kinds: { jwt: true } } } },
        { name: 'off', match: { path: '/off/*' }, upstream: 'app', policies: { detect: false } },
      ],
    });
    const res = await send(gw.url, '/api/x');
    expect(res.json()).toEqual({ card: '**** **** **** 1111', order: '4111 1111 1111 1112', key: '[REDACTED:privateKey]', session: jwt });
    const event = await gw.logs.waitFor((l) => l.event === 'response_secret_detected');
    expect(event).toMatchObject({ eventLevel: 'WARN', route: 'default', data: { filter: 'detect', count: 2, kinds: 'card,privateKey', paths: '$.card, $.key' } });
    expect(JSON.stringify(event)).not.toContain('4111 1111 1111 1111');
    expect((await send(gw.url, '/jwt/x')).json()).toMatchObject({ session: '[REDACTED:jwt]' });
    expect((await send(gw.url, '/off/x')).json()).toMatchObject({ card: '4111 1111 1111 1111' });
  });
});
