import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmittedEvent, Events, SecurityEvent } from '../observability/events.js';
import { openStorage, type Storage } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { SigningKeys } from './keys.js';
import { MasterKey } from './master-key.js';
import { Mfa, normalizeRecoveryCode, type MfaSettings } from './mfa.js';
import { LOCKED_FOREVER } from './rows.js';
import { SecretKeys } from './secret-keys.js';
import { TokenHasher } from './tokens.js';

/**
 * The Mfa service over a real database (both backends), with the clock passed in: single use of
 * codes by compare-and-set, recovery codes, the lockout, and the secret at rest.
 */

const PG = 'postgres://postgres@127.0.0.1:5432/test';
const pgUp =
  process.env.RAMPART_REQUIRE_SERVICES === '1' ||
  (await new pg.Client({ connectionString: PG, connectionTimeoutMillis: 2000 }).connect().then(
    () => true,
    () => (console.warn('SKIPPED: PostgreSQL is not running on 127.0.0.1:5432; its MFA unit tests skip (set RAMPART_REQUIRE_SERVICES=1 to fail instead)'), false),
  ));

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const CLIENT = { ip: '192.0.2.1', userAgent: undefined, requestId: 'test' };
const T0 = 1_760_000_000_000 - (1_760_000_000_000 % 30_000); // the start of a time step
const code = (secret: string, at: number) => OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), timestamp: at });

async function storage(backend: 'sqlite' | 'postgres'): Promise<Storage> {
  let s: Storage;
  if (backend === 'sqlite') {
    s = openStorage(`sqlite:${join(mkdtempSync(join(tmpdir(), 'rampart-mfa-')), 'rampart.db')}`, '/');
  } else {
    const schema = `rampart_mfa_${randomUUID().replace(/-/g, '')}`;
    const client = new pg.Client({ connectionString: PG });
    await client.connect();
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.end();
    s = openStorage(`${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, '/');
    cleanup.push(async () => {
      const c = new pg.Client({ connectionString: PG });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    });
  }
  cleanup.push(() => s.close());
  await migrateToLatest(s.db);
  return s;
}

interface Setup {
  mfa: Mfa;
  db: Storage['db'];
  master: MasterKey;
  events: EmittedEvent[];
  user(): Promise<string>;
}

async function setup(backend: 'sqlite' | 'postgres', settings: Partial<MfaSettings> = {}, master = new MasterKey(randomBytes(32))): Promise<Setup> {
  const { db } = await storage(backend);
  const events: EmittedEvent[] = [];
  const sink: Events = {
    emit: (e: SecurityEvent) => void events.push({ ...e, event: e.type, time: new Date().toISOString() }),
    addSink: () => () => undefined,
  };
  const hasher = new TokenHasher(await SecretKeys.open(db, master));
  const keys = new SigningKeys(db, master, 'EdDSA', { rotateEveryMs: 86_400_000, jwksMaxAgeMs: 600_000, retainMs: 900_000 });
  const mfa = new Mfa({ db, master, hasher, keys, tokenIssuer: 'https://localhost', events: sink, settings: { issuer: 'Rampart', requireForRoles: [], lockout: { threshold: 5, baseMs: 30_000, maxMs: 900_000, permanentAfter: 100 }, ...settings } });
  return {
    mfa,
    db,
    master,
    events,
    async user() {
      const id = randomUUID();
      const now = new Date(T0).toISOString();
      await db.insertInto('users').values({ id, email: `${id}@example.com`, password_hash: 'x', created_at: now, updated_at: now, disabled_at: null, locked_until: null, tokens_not_before: null }).execute();
      return id;
    },
  };
}

/** An account with TOTP on (confirmed at T0): its id, secret and recovery codes. */
async function enabled(s: Setup): Promise<{ id: string; secret: string; recoveryCodes: string[] }> {
  const id = await s.user();
  const { secret } = await s.mfa.enrol(id, 'ada@example.com', { client: CLIENT, now: T0 });
  const { recoveryCodes } = await s.mfa.confirm(id, code(secret, T0), { client: CLIENT, now: T0 });
  return { id, secret, recoveryCodes };
}

const refusal = (promise: Promise<unknown>) => promise.then(() => 'accepted', (e: { code?: string }) => e.code);

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`Mfa on ${backend}`, () => {
    it('enrols (pending, the secret encrypted, never stored as is), confirms with a first code, and gives 10 distinct recovery codes', async () => {
      const s = await setup(backend);
      const id = await s.user();
      expect(await s.mfa.status(id)).toEqual({ totp: 'off', enabledAt: null, recoveryCodesLeft: 0 });
      const enrolment = await s.mfa.enrol(id, 'ada@example.com', { client: CLIENT, now: T0 });
      expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(enrolment.otpauthUri).toContain(`secret=${enrolment.secret}`);
      expect(enrolment.qrCode).toMatch(/^data:image\/gif;base64,/);
      expect(await s.mfa.status(id)).toMatchObject({ totp: 'pending', enabledAt: null });
      const row = await s.db.selectFrom('user_mfa').selectAll().where('user_id', '=', id).executeTakeFirstOrThrow();
      expect(row.secret_encrypted).toMatch(/^v1\./);
      expect(row.secret_encrypted).not.toContain(enrolment.secret);
      expect(row.secret_encrypted.toUpperCase()).not.toContain(enrolment.secret.slice(0, 8));
      // A code of another secret does not confirm it.
      expect(await refusal(s.mfa.confirm(id, code('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', T0), { client: CLIENT, now: T0 }))).toBe('RMP_MFA_CODE_INVALID');
      const { recoveryCodes } = await s.mfa.confirm(id, code(enrolment.secret, T0), { client: CLIENT, now: T0 });
      expect(recoveryCodes).toHaveLength(10);
      expect(new Set(recoveryCodes).size).toBe(10);
      for (const c of recoveryCodes) expect(c).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/);
      expect(await s.mfa.status(id)).toEqual({ totp: 'on', enabledAt: new Date(T0).toISOString(), recoveryCodesLeft: 10 });
      const stored = await s.db.selectFrom('recovery_codes').select('code_hash').where('user_id', '=', id).execute();
      for (const c of recoveryCodes) expect(JSON.stringify(stored)).not.toContain(normalizeRecoveryCode(c)!);
      // On: a second enrolment is refused, and so is a second confirmation.
      expect(await refusal(s.mfa.enrol(id, 'ada@example.com', { client: CLIENT, now: T0 }))).toBe('RMP_MFA_ALREADY_ENABLED');
      expect(await refusal(s.mfa.confirm(id, code(enrolment.secret, T0 + 30_000), { client: CLIENT, now: T0 + 30_000 }))).toBe('RMP_MFA_ALREADY_ENABLED');
      expect(s.events.map((e) => e.type)).toEqual(['authn_mfa_enrol', 'authn_mfa_fail', 'authn_mfa_enabled']);
    });

    it('replay: the confirming code, the same code twice, and an older step after a newer one are refused', async () => {
      const s = await setup(backend);
      const { id, secret } = await enabled(s);
      const at = (t: number) => ({ client: CLIENT, now: t });
      // The code that confirmed the enrolment (step T0) is used already, though still in its window.
      expect(await refusal(s.mfa.verify(id, { code: code(secret, T0) }, at(T0 + 10_000)))).toBe('RMP_MFA_CODE_INVALID');
      const next = code(secret, T0 + 30_000);
      expect((await s.mfa.verify(id, { code: next }, at(T0 + 30_000))).method).toBe('totp');
      expect(await refusal(s.mfa.verify(id, { code: next }, at(T0 + 35_000)))).toBe('RMP_MFA_CODE_INVALID');
      // Two steps on: the newer code first, then the one before it (still inside the ±1 window).
      const older = code(secret, T0 + 60_000);
      const newer = code(secret, T0 + 90_000);
      expect((await s.mfa.verify(id, { code: newer }, at(T0 + 75_000))).method).toBe('totp');
      expect(await refusal(s.mfa.verify(id, { code: older }, at(T0 + 75_000)))).toBe('RMP_MFA_CODE_INVALID');
      const row = await s.db.selectFrom('user_mfa').select(['last_step', 'failed']).where('user_id', '=', id).executeTakeFirstOrThrow();
      expect(Number(row.last_step)).toBe((T0 + 90_000) / 30_000);
      expect(row.failed).toBe(1);
      expect(s.events.filter((e) => e.type === 'authn_mfa_fail').map((e) => e.data?.reason)).toEqual(['replay', 'replay', 'replay']);
    });

    it('replay: of concurrent uses of one code exactly one wins (compare-and-set on last_step)', async () => {
      const s = await setup(backend, { lockout: { threshold: 50, baseMs: 30_000, maxMs: 900_000, permanentAfter: 100 } });
      const { id, secret } = await enabled(s);
      const now = T0 + 30_000;
      const same = code(secret, now);
      const outcomes = await Promise.all(Array.from({ length: 8 }, () => refusal(s.mfa.verify(id, { code: same }, { client: CLIENT, now }))));
      expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'RMP_MFA_CODE_INVALID')).toHaveLength(7);
    });

    it('a code is used up only when the work in its transaction commits', async () => {
      const s = await setup(backend);
      const { id, secret } = await enabled(s);
      const now = T0 + 30_000;
      const c = code(secret, now);
      await expect(s.mfa.verify(id, { code: c }, { client: CLIENT, now }, () => Promise.reject(new Error('session failed')))).rejects.toThrow('session failed');
      expect((await s.mfa.verify(id, { code: c }, { client: CLIENT, now })).method).toBe('totp');
    });

    it('recovery codes work once each, as typed (case, spaces, hyphens), and not for another account', async () => {
      const s = await setup(backend, { lockout: { threshold: 50, baseMs: 30_000, maxMs: 900_000, permanentAfter: 100 } });
      const ada = await enabled(s);
      const bob = await enabled(s);
      const ctx = { client: CLIENT, now: T0 + 5000 };
      const [first, second] = ada.recoveryCodes as [string, string];
      expect(await refusal(s.mfa.verify(bob.id, { recoveryCode: first }, ctx))).toBe('RMP_MFA_CODE_INVALID');
      expect((await s.mfa.verify(ada.id, { recoveryCode: first }, ctx)).method).toBe('recovery');
      expect(await refusal(s.mfa.verify(ada.id, { recoveryCode: first }, ctx))).toBe('RMP_MFA_CODE_INVALID');
      expect((await s.mfa.verify(ada.id, { recoveryCode: ` ${second.toUpperCase().replace(/-/g, ' ')} ` }, ctx)).method).toBe('recovery');
      expect(await s.mfa.status(ada.id)).toMatchObject({ recoveryCodesLeft: 8 });
      for (const bad of ['', 'x'.repeat(16), `${first}0`, 'ⅰ'.repeat(16), '__proto__'.repeat(2), 'a'.repeat(65)]) {
        expect(await refusal(s.mfa.verify(ada.id, { recoveryCode: bad }, ctx)), bad).toBe('RMP_MFA_CODE_INVALID');
      }
      // Replaced: the old ones stop working, the new ones work.
      const fresh = await s.mfa.replaceRecoveryCodes(ada.id, { code: code(ada.secret, T0 + 30_000) }, { client: CLIENT, now: T0 + 30_000 });
      expect(await refusal(s.mfa.verify(ada.id, { recoveryCode: ada.recoveryCodes[2]! }, ctx))).toBe('RMP_MFA_CODE_INVALID');
      expect((await s.mfa.verify(ada.id, { recoveryCode: fresh[0]! }, ctx)).method).toBe('recovery');
      const used = s.events.filter((e) => e.type === 'authn_mfa_recovery_used').map((e) => e.data?.left);
      expect(used).toEqual([9, 8, 9]);
      expect(normalizeRecoveryCode('ABCD-EFGH-JKMN-PQRS')).toBe('abcdefghjkmnpqrs');
      expect(normalizeRecoveryCode('o0il-1111-2222-3333')).toBe('0011111122223333');
    });

    it('locks the second factor after the threshold, with the same answer while locked, doubling; a right code later resets the count', async () => {
      const s = await setup(backend, { lockout: { threshold: 3, baseMs: 30_000, maxMs: 900_000, permanentAfter: 100 } });
      const { id, secret, recoveryCodes } = await enabled(s);
      const t = T0 + 300_000;
      const wrong = (now: number) => refusal(s.mfa.verify(id, { code: code(secret, now - 600_000) }, { client: CLIENT, now }));
      for (let i = 0; i < 3; i++) expect(await wrong(t)).toBe('RMP_MFA_CODE_INVALID');
      const row = await s.db.selectFrom('user_mfa').select(['failed', 'locked_until']).where('user_id', '=', id).executeTakeFirstOrThrow();
      expect(row).toEqual({ failed: 3, locked_until: new Date(t + 30_000).toISOString() });
      // Locked: the right code is refused like a wrong one, and is not counted.
      expect(await refusal(s.mfa.verify(id, { code: code(secret, t + 1000) }, { client: CLIENT, now: t + 1000 }))).toBe('RMP_MFA_CODE_INVALID');
      expect(await refusal(s.mfa.verify(id, { recoveryCode: recoveryCodes[0]! }, { client: CLIENT, now: t + 1000 }))).toBe('RMP_MFA_CODE_INVALID');
      // After the lock, one more wrong code locks for twice as long.
      expect(await wrong(t + 31_000)).toBe('RMP_MFA_CODE_INVALID');
      expect((await s.db.selectFrom('user_mfa').select('locked_until').where('user_id', '=', id).executeTakeFirstOrThrow()).locked_until).toBe(new Date(t + 31_000 + 60_000).toISOString());
      const later = t + 31_000 + 61_000;
      expect((await s.mfa.verify(id, { code: code(secret, later) }, { client: CLIENT, now: later })).method).toBe('totp');
      expect(await s.db.selectFrom('user_mfa').select(['failed', 'locked_until']).where('user_id', '=', id).executeTakeFirstOrThrow()).toEqual({ failed: 0, locked_until: null });
      const types = s.events.map((e) => e.type);
      expect(types.filter((x) => x === 'authn_mfa_lock')).toHaveLength(2);
      expect(s.events.filter((e) => e.type === 'authn_mfa_fail').map((e) => e.data?.reason)).toEqual(['code', 'code', 'code', 'locked', 'locked', 'code']);
      // The password's count is another column, untouched.
      expect((await s.db.selectFrom('users').select('failed_logins').where('id', '=', id).executeTakeFirstOrThrow()).failed_logins).toBe(0);
    });

    it('mfa-lock-never-permanent: past permanentAfter wrong codes the second factor stays locked until an admin resets it', async () => {
      const s = await setup(backend, { lockout: { threshold: 2, baseMs: 1000, maxMs: 2000, permanentAfter: 4 } });
      const { id, secret } = await enabled(s);
      let t = T0 + 300_000;
      for (let i = 0; i < 4; i++) {
        expect(await refusal(s.mfa.verify(id, { code: code(secret, t - 600_000) }, { client: CLIENT, now: t }))).toBe('RMP_MFA_CODE_INVALID');
        t += 3000; // past each temporary lock
      }
      expect((await s.db.selectFrom('user_mfa').select('locked_until').where('user_id', '=', id).executeTakeFirstOrThrow()).locked_until).toBe(LOCKED_FOREVER);
      // A year on, the right code is still refused.
      const year = t + 365 * 86_400_000;
      expect(await refusal(s.mfa.verify(id, { code: code(secret, year) }, { client: CLIENT, now: year }))).toBe('RMP_MFA_CODE_INVALID');
      expect(s.events.filter((e) => e.type === 'authn_mfa_lock').at(-1)?.data?.until).toBe(LOCKED_FOREVER);
      expect(await s.mfa.reset(id, { client: CLIENT, actor: 'admin' })).toBe(true);
      expect(await s.mfa.status(id)).toMatchObject({ totp: 'off' });
    });

    it('disable and admin reset remove the secret and the recovery codes', async () => {
      const s = await setup(backend);
      const ada = await enabled(s);
      expect(await refusal(s.mfa.disable(ada.id, { code: '000000' }, { client: CLIENT, now: T0 + 30_000 }))).toBe('RMP_MFA_CODE_INVALID');
      expect(await s.mfa.status(ada.id)).toMatchObject({ totp: 'on' });
      await s.mfa.disable(ada.id, { recoveryCode: ada.recoveryCodes[0]! }, { client: CLIENT, now: T0 + 30_000 });
      expect(await s.mfa.status(ada.id)).toEqual({ totp: 'off', enabledAt: null, recoveryCodesLeft: 0 });
      expect(await s.db.selectFrom('recovery_codes').select('id').where('user_id', '=', ada.id).execute()).toEqual([]);
      expect(await refusal(s.mfa.disable(ada.id, { code: code(ada.secret, T0 + 60_000) }, { client: CLIENT, now: T0 + 60_000 }))).toBe('RMP_MFA_NOT_ENROLLED');
      const bob = await enabled(s);
      expect(await s.mfa.reset(bob.id, { client: CLIENT, actor: 'admin' })).toBe(true);
      expect(await s.mfa.reset(bob.id, { client: CLIENT, actor: 'admin' })).toBe(false);
      expect(await s.mfa.state(bob.id)).toBe('off');
      expect(s.events.filter((e) => ['authn_mfa_disabled', 'authn_mfa_reset'].includes(e.type)).map((e) => [e.type, e.actor])).toEqual([
        ['authn_mfa_disabled', ada.id],
        ['authn_mfa_reset', 'admin'],
      ]);
    });

    it('a sealed secret opens only for its own account, and is re-encrypted at a master-key rotation', async () => {
      const oldSecret = randomBytes(32);
      const s = await setup(backend, {}, new MasterKey(oldSecret));
      const ada = await enabled(s);
      const bob = await enabled(s);
      // Ada's ciphertext copied onto Bob's row does not give Bob Ada's secret.
      const adaRow = await s.db.selectFrom('user_mfa').select('secret_encrypted').where('user_id', '=', ada.id).executeTakeFirstOrThrow();
      await s.db.updateTable('user_mfa').set({ secret_encrypted: adaRow.secret_encrypted }).where('user_id', '=', bob.id).execute();
      await expect(s.mfa.verify(bob.id, { code: code(ada.secret, T0 + 30_000) }, { client: CLIENT, now: T0 + 30_000 })).rejects.toThrow(/another account/);
      await s.db.deleteFrom('user_mfa').where('user_id', '=', bob.id).execute();
      const newKey = new MasterKey(randomBytes(32), [oldSecret]);
      expect(await s.db.transaction().execute((trx) => Mfa.reencrypt(trx, newKey))).toBe(1);
      const row = await s.db.selectFrom('user_mfa').select('secret_encrypted').where('user_id', '=', ada.id).executeTakeFirstOrThrow();
      expect(newKey.isCurrent(row.secret_encrypted, 'totp-secrets')).toBe(true);
      expect(await s.db.transaction().execute((trx) => Mfa.reencrypt(trx, newKey))).toBe(0);
    });
  });
}
