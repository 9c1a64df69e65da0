import { describe, expect, it } from 'vitest';
import { hash as argon2Hash } from '@node-rs/argon2';
import { MIN_ARGON2, PasswordHasher, passwordProblem } from './passwords.js';

describe('password rules', () => {
  const check = (p: string, email = 'alice.smith@example.com') => passwordProblem(p, { minLength: 12, email });

  it('counts characters, not bytes; no composition rules; capped at 256 characters and 1 KiB', () => {
    expect(check('a'.repeat(11))).toBe('RMP_PASSWORD_TOO_SHORT');
    expect(check('purple tulip river')).toBeUndefined(); // lowercase letters and spaces only: fine
    expect(check('ééééééééééé')).toBe('RMP_PASSWORD_TOO_SHORT'); // 11 characters, 22 bytes
    expect(check('😀'.repeat(12))).toBeUndefined();
    expect(check('x'.repeat(256))).toBeUndefined();
    expect(check('x'.repeat(257))).toBe('RMP_PASSWORD_TOO_LONG');
    expect(check('😀'.repeat(257))).toBe('RMP_PASSWORD_TOO_LONG'); // 257 characters, 1028 bytes
  });

  it('refuses common passwords (any case) and ones containing the e-mail name or the product name', () => {
    expect(check('password1234')).toBe('RMP_PASSWORD_COMMON');
    expect(check('1QAZ2WSX3EDC')).toBe('RMP_PASSWORD_COMMON');
    expect(passwordProblem('iloveyou', { minLength: 8 })).toBe('RMP_PASSWORD_COMMON');
    expect(check('my alice.smith secret')).toBe('RMP_PASSWORD_CONTAINS_IDENTITY');
    expect(check('I love Rampart so much')).toBe('RMP_PASSWORD_CONTAINS_IDENTITY');
    expect(passwordProblem('bo is a fine name here', { minLength: 12, email: 'bo@example.com' })).toBeUndefined(); // too short a name to match
  });
});

describe('PasswordHasher', () => {
  it('hashes with Argon2id at the configured parameters and verifies; never below the minimum', async () => {
    const hasher = new PasswordHasher();
    const stored = await hasher.hash('purple tulip river');
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await hasher.verify(stored, 'purple tulip river')).toEqual({ ok: true, rehash: false });
    expect(await hasher.verify(stored, 'purple tulip rivet')).toEqual({ ok: false, rehash: false });
    expect(() => new PasswordHasher({ ...MIN_ARGON2, memoryCost: 4096 })).toThrow(/below the minimum/);
  });

  it('asks for a rehash when the stored hash is weaker than configured', async () => {
    const weak = await argon2Hash('purple tulip river', { memoryCost: 8192, timeCost: 1, parallelism: 1, algorithm: 2 });
    const hasher = new PasswordHasher({ ...MIN_ARGON2, timeCost: 3 });
    expect(await hasher.verify(weak, 'purple tulip river')).toEqual({ ok: true, rehash: true });
    expect(hasher.needsRehash('$2b$10$abcdefghijklmnopqrstuv')).toBe(true); // bcrypt: not Argon2id
  });

  it('an unknown user costs a full verification too (no timing difference), and a flood is shed at once', async () => {
    const hasher = new PasswordHasher(MIN_ARGON2, { concurrency: 1, queue: 2 });
    expect(await hasher.verify(undefined, 'whatever it is')).toEqual({ ok: false, rehash: false });
    const flood = Array.from({ length: 6 }, () => hasher.hash('purple tulip river').then(() => 'done', (e: { code?: string }) => e.code));
    const outcomes = await Promise.all(flood);
    // 1 running + 2 waiting; the other 3 refused without waiting.
    expect(outcomes.filter((o) => o === 'done')).toHaveLength(3);
    expect(outcomes.filter((o) => o === 'RMP_OVERLOADED')).toHaveLength(3);
  });
});
