import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMasterKey, MasterKey } from './master-key.js';

describe('master key', () => {
  it('encrypts per purpose (AES-256-GCM, purpose bound), refuses tampering and the wrong purpose or key', () => {
    const key = new MasterKey(randomBytes(32));
    const sealed = key.encrypt('{"d":"private jwk"}', 'signing-keys');
    expect(sealed).toMatch(/^v1\.[\w-]{16}\.[\w-]+$/);
    expect(key.decrypt(sealed, 'signing-keys')).toBe('{"d":"private jwk"}');
    expect(key.encrypt('x', 'signing-keys')).not.toBe(key.encrypt('x', 'signing-keys')); // fresh IV each time
    expect(() => key.decrypt(sealed, 'api-key-pepper')).toThrow();
    expect(() => new MasterKey(randomBytes(32)).decrypt(sealed, 'signing-keys')).toThrow();
    const tampered = `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'AB' : 'AA'}`;
    expect(() => key.decrypt(tampered, 'signing-keys')).toThrow();
    expect(key.derive('api-key-pepper', 1).equals(key.derive('api-key-pepper', 2))).toBe(false);
  });

  it('a key being rotated to decrypts what the previous key encrypted, encrypts only under itself, and says which key a text is under', () => {
    const oldSecret = randomBytes(32);
    const old = new MasterKey(oldSecret);
    const sealed = old.encrypt('secret', 'signing-keys');
    const rotating = new MasterKey(randomBytes(32), [oldSecret]);
    expect(rotating.rotating).toBe(true);
    expect(rotating.decrypt(sealed, 'signing-keys')).toBe('secret');
    expect(rotating.isCurrent(sealed, 'signing-keys')).toBe(false);
    const again = rotating.encrypt('secret', 'signing-keys');
    expect(rotating.isCurrent(again, 'signing-keys')).toBe(true);
    expect(() => old.decrypt(again, 'signing-keys')).toThrow();
    expect(() => rotating.decrypt(sealed, 'totp-secrets')).toThrow();
    expect(() => new MasterKey(oldSecret, [oldSecret])).toThrow(/same as the master key/);
    expect(() => loadMasterKey({ configured: undefined, previous: [oldSecret.toString('base64')], mode: 'development', dataDir: tmpdir() })).toThrow(/needs identity.masterKey/);
  });

  it('development generates one key into dataDir (0600) and reuses it; production must be given one', () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'rampart-mk-')), 'data');
    const first = loadMasterKey({ configured: undefined, mode: 'development', dataDir });
    expect(first.generated).toBe(true);
    expect(statSync(first.file!).mode & 0o777).toBe(0o600);
    const second = loadMasterKey({ configured: undefined, mode: 'development', dataDir });
    expect(second).toMatchObject({ generated: false });
    expect(second.key.id).toBe(first.key.id);
    expect(() => loadMasterKey({ configured: undefined, mode: 'production', dataDir })).toThrow(/required in production/);
    expect(() => loadMasterKey({ configured: randomBytes(16).toString('base64'), mode: 'production', dataDir })).toThrow(/at least 32 bytes/);
    expect(loadMasterKey({ configured: randomBytes(32).toString('base64'), mode: 'production', dataDir }).generated).toBe(false);
  });
});
