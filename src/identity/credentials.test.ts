import { describe, expect, it } from 'vitest';
import { credentialHash, credentialKind, isCredential, newCredential, shownPrefix } from './credentials.js';

describe('credentials', () => {
  it('makes rmp_<env>_ keys and rmpcs_<env>_ secrets of 256 random bits with a checksum that catches every single-character change', () => {
    const key = newCredential('apiKey', 'live');
    expect(key).toMatch(/^rmp_live_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$/);
    expect(newCredential('clientSecret', 'test')).toMatch(/^rmpcs_test_[0-9A-Za-z]{49}$/);
    expect(isCredential(key, 'apiKey', 'live')).toBe(true);
    expect(isCredential(key, 'apiKey', 'test')).toBe(false);
    expect(isCredential(key, 'clientSecret', 'live')).toBe(false);
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    for (let i = 9; i < key.length; i++) {
      const other = alphabet[(alphabet.indexOf(key[i]!) + 1) % 62]!;
      expect(isCredential(key.slice(0, i) + other + key.slice(i + 1), 'apiKey', 'live')).toBe(false);
    }
    for (const bad of ['', key.slice(0, -1), `${key}0`, key.toUpperCase(), ` ${key}`, `rmp_live_${'0'.repeat(49)}`, 'rmp_live_' + key.slice(9).replace(/./, '-')]) {
      expect(isCredential(bad, 'apiKey', 'live')).toBe(false);
    }
    expect(credentialKind(key)).toBe('apiKey');
    expect(credentialKind(newCredential('clientSecret', 'live'))).toBe('clientSecret');
    expect(credentialKind('eyJhbGciOi.x.y')).toBeUndefined();
    expect(shownPrefix(key)).toBe(key.slice(0, 17));
  });

  it('draws every character evenly (no modulo bias) and never repeats', () => {
    const counts = new Map<string, number>();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const key = newCredential('apiKey', 'live');
      expect(seen.has(key)).toBe(false);
      seen.add(key);
      for (const c of key.slice(9, 52)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    // 86 000 draws over 62 characters: about 1387 each; a biased draw would favour 0–7 by ~25 %.
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(Math.abs(n - 86_000 / 62)).toBeLessThan(200);
  });

  it('hashes with the pepper: another pepper, another hash', () => {
    const key = newCredential('apiKey', 'live');
    const a = credentialHash(Buffer.alloc(32, 1), key);
    expect(a).toBe(credentialHash(Buffer.alloc(32, 1), key));
    expect(a).not.toBe(credentialHash(Buffer.alloc(32, 2), key));
    expect(a).not.toContain(key.slice(9));
  });
});
