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
