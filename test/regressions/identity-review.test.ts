import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pino from 'pino';
import { openStorage, type Storage } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { SigningKeys } from '../../src/identity/keys.js';
import { MasterKey } from '../../src/identity/master-key.js';
import { LOCKED_FOREVER } from '../../src/identity/service.js';
import { RampartError } from '../../src/errors/problem.js';
import { AuditSink } from '../../src/observability/audit-sink.js';
import { createEvents } from '../../src/observability/events.js';
import { freshStorage, holdNextCall, postgresAvailable, startIdentityGateway, type IdentityGateway } from '../helpers/identity.js';

/**
 * Bugs a hostile review of the identity service found, one test each, named after the bug.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const PASSWORD = 'a long enough passphrase 7';
const DAY = 86_400_000;

async function gateway(identity: Record<string, unknown> = {}): Promise<IdentityGateway> {
  const id = await startIdentityGateway({ backend: 'sqlite', identity: { limits: { login: { limit: 1000, window: '1m' }, refresh: { limit: 1000, window: '1m' } }, ...identity } });
  open.push(id);
  await id.call('POST', '/api/v1/auth/register', { json: { email: 'victim@example.com', password: PASSWORD } });
  return id;
}


describe('identity review regressions', () => {
  it('concurrent-guesses-bypass-lockout: 12 simultaneous wrong passwords count up to the lock, not past it, and never reach the permanent lock', async () => {
    const id = await gateway({ lockout: { threshold: 5, baseDelay: '1h', maxDelay: '1h', permanentAfter: 10 } });
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: `wrong guess ${i}` } })));
    expect(replies.every((r) => r.status === 401)).toBe(true);
    const row = await id.gw.runtime.identity!.service.db.selectFrom('users').select(['failed_logins', 'locked_until']).executeTakeFirstOrThrow();
    expect(row.failed_logins).toBe(5);
    expect(row.locked_until).not.toBe(LOCKED_FOREVER);
    expect(Date.parse(row.locked_until!)).toBeGreaterThan(Date.now());
    // Locked: the right password too is refused, without counting.
    expect((await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).status).toBe(401);
  });

  it('login-uses-stale-account: an account disabled while its login waits for Argon2 does not log in', async () => {
    const id = await gateway();
    const service = id.gw.runtime.identity!.service;
    const victim = await service.db.selectFrom('users').select('id').executeTakeFirstOrThrow();
    const hold = holdNextCall(id.gw.runtime.identity!.service.passwords, 'verify');
    const pending = id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } });
    await hold.inside;
    await service.updateUser({ id: 'admin', roles: ['admin'], sid: undefined, jti: undefined, exp: undefined }, victim.id, { status: 'disabled' }, { ip: '', userAgent: undefined, requestId: 't' });
    hold.release();
    const reply = await pending;
    expect([reply.status, reply.json().code]).toEqual([401, 'RMP_LOGIN_FAILED']);
  });

  it('login-uses-stale-account: a session made while a password change runs cannot refresh after it', async () => {
    const id = await gateway();
    const service = id.gw.runtime.identity!.service;
    const first = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ access_token: string; refresh_token: string }>();
    // A session whose creation time is before the user's not-before time (as when it was made
    // while the change ran): refused and ended at its next refresh.
    await service.db.updateTable('users').set({ tokens_not_before: new Date(Date.now() + 1000).toISOString() }).execute();
    const refused = await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: first.refresh_token } });
    expect([refused.status, refused.json().code]).toEqual([401, 'RMP_REFRESH_TOKEN_INVALID']);
    const family = await service.db.selectFrom('refresh_families').select('revoked_reason').executeTakeFirstOrThrow();
    expect(family.revoked_reason).toBe('stale');
  });

  it('refresh-spent-on-store-error: a refresh that fails with the store does not spend the token; the retry works and is no reuse', async () => {
    const id = await gateway();
    const tokens = id.gw.runtime.identity!.service.tokens;
    const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ refresh_token: string }>();
    const original = tokens.issue.bind(tokens);
    tokens.issue = () => {
      tokens.issue = original;
      return Promise.reject(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }));
    };
    const failed = await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } });
    expect([failed.status, failed.json().code]).toEqual([503, 'RMP_STORE_UNAVAILABLE']);
    const retry = await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } });
    expect(retry.status).toBe(200);
  });

  it('logout-misses-refresh-in-flight: the access token of a refresh that finishes after the logout is refused', async () => {
    const id = await gateway();
    const tokens = id.gw.runtime.identity!.service.tokens;
    const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ access_token: string; refresh_token: string }>();
    const { inside, release } = holdNextCall(tokens, 'issue');
    const refreshing = id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } });
    await inside;
    const loggingOut = id.call('POST', '/api/v1/auth/logout', { token: login.access_token });
    // Let the logout finish first if it can (it could before the fix: the rotation was committed
    // and the new token not yet recorded); now the database makes it wait for the refresh.
    await Promise.race([loggingOut, new Promise((r) => setTimeout(r, 500))]);
    release();
    const [refreshed, out] = await Promise.all([refreshing, loggingOut]);
    expect(out.status).toBe(204);
    if (refreshed.status === 200) {
      const late = await id.call('GET', '/api/v1/users/me', { token: refreshed.json<{ access_token: string }>().access_token });
      expect([late.status, late.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
    } else expect(refreshed.status).toBe(401);
  });

  it('logged-out-token-revived-by-skew: a logged-out token stays denylisted past its exp by the largest clock skew', async () => {
    const id = await gateway();
    const service = id.gw.runtime.identity!.service;
    const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ access_token: string }>();
    const claims = JSON.parse(Buffer.from(login.access_token.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number };
    expect((await id.call('POST', '/api/v1/auth/logout', { token: login.access_token })).status).toBe(204);
    const row = await service.db.selectFrom('revoked_tokens').selectAll().where('jti', '=', claims.jti).executeTakeFirstOrThrow();
    expect(Date.parse(row.expires_at)).toBe((claims.exp + 300) * 1000);
    // The store answers "revoked" for a token checked within the skew after exp.
    const realNow = Date.now;
    try {
      Date.now = () => (claims.exp + 200) * 1000;
      expect(service.revocation.isRevoked({ jti: claims.jti })).toBe(true);
    } finally {
      Date.now = realNow;
    }
  });

  it('revoked-signing-key-revives-retired-key: revoking the current key never republishes a key retired long ago', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-keys-'));
    const storage: Storage = openStorage(`sqlite:${join(dir, 'k.db')}`, '/');
    open.push(storage);
    await migrateToLatest(storage.db);
    const keys = new SigningKeys(storage.db, new MasterKey(randomBytes(32)), 'EdDSA', { rotateEveryMs: 30 * DAY, jwksMaxAgeMs: 600_000, retainMs: 900_000 });
    const t0 = Date.now();
    await keys.ensure(t0);
    const k1 = keys.signer().kid;
    const t1 = t0 + 30 * DAY + 1000;
    await keys.ensure(t1);
    const k2 = keys.signer().kid;
    expect(k2).not.toBe(k1);
    const t2 = t1 + 10 * DAY;
    await keys.ensure(t2);
    expect(keys.list(t2).map((k) => k.kid)).not.toContain(k1);
    expect(await keys.revoke(k2, t2)).toBe(true);
    const listed = keys.list(t2);
    expect(listed.map((k) => k.kid)).not.toContain(k1);
    expect(listed.map((k) => k.kid)).not.toContain(k2);
    expect(keys.signer().kid).not.toBe(k1);
    expect(listed.find((k) => k.state === 'current')?.kid).toBe(keys.signer().kid);
    expect(() => keys.verificationKey(k1, t2)).toThrow();
  });
});

describe.skipIf(!pgUp)('audit-sink-stuck-on-bad-row', () => {
  it('drops a row the database refuses and keeps writing the events after it', async () => {
    const fresh = await freshStorage('postgres');
    open.push({ close: fresh.drop });
    const storage = openStorage(fresh.url, '/');
    open.push(storage);
    await migrateToLatest(storage.db);
    await sql`alter table audit_events add constraint refuse_evil check (description <> 'evil')`.execute(storage.db);
    const logger = pino({ level: 'silent' });
    const events = createEvents(logger);
    const sink = new AuditSink(storage.db, logger);
    events.addSink(sink.sink);
    events.emit({ type: 'test_good', level: 'INFO', description: 'before' });
    events.emit({ type: 'test_evil', level: 'INFO', description: 'evil' });
    events.emit({ type: 'test_good', level: 'INFO', description: 'after', subject: 'x'.repeat(1000) });
    await sink.flush();
    // A NUL (PostgreSQL refuses it in text) is replaced, not a reason to lose the event.
    events.emit({ type: 'test_good', level: 'INFO', description: 'later', subject: 'abc\u0000def' });
    await sink.flush();
    const rows = await storage.db.selectFrom('audit_events').select(['description', 'subject']).orderBy('id').execute();
    expect(rows.map((r) => r.description)).toEqual(['before', 'after', 'later']);
    expect(rows[2]!.subject).toBe('abc\uFFFDdef');
    expect(rows[1]!.subject).toHaveLength(300);
    expect(sink.rejected).toBe(1);
    await sink.close();
  });
});

describe('last-admin-can-remove-themselves', () => {
  it('refuses to delete, disable or demote the only active admin, and allows it once another admin exists', async () => {
    const id = await startIdentityGateway({ backend: 'sqlite' });
    open.push(id);
    const service = id.gw.runtime.identity!.service;
    const first = await service.bootstrapAdmin('first@example.com');
    const actor = { id: first.id, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined };
    const client = { ip: '', userAgent: undefined, requestId: 't' };
    for (const attempt of [() => service.deleteUser(actor, first.id, client), () => service.updateUser(actor, first.id, { status: 'disabled' }, client), () => service.updateUser(actor, first.id, { roles: ['user'] }, client)]) {
      await expect(attempt()).rejects.toMatchObject({ code: 'RMP_LAST_ADMIN' });
    }
    await service.bootstrapAdmin('second@example.com');
    expect((await service.updateUser(actor, first.id, { roles: ['user'] }, client))?.roles).toEqual(['user']);
  });
});

describe('password-change-token-outlives-reset', () => {
  it('a password-change token given for one one-time password is void once an admin resets it again', async () => {
    const id = await startIdentityGateway({ backend: 'sqlite' });
    open.push(id);
    const service = id.gw.runtime.identity!.service;
    const boss = await service.bootstrapAdmin('boss@example.com');
    const target = await service.createUser({ id: boss.id, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined }, { email: 'temp@example.com' }, { ip: '', userAgent: undefined, requestId: 't' });
    const stale = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'temp@example.com', password: target.oneTimePassword } })).json<{ passwordChangeToken: string }>().passwordChangeToken;
    const again = await service.resetPassword({ id: boss.id, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined }, target.user.id, { ip: '', userAgent: undefined, requestId: 't' });
    const refused = await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: stale, newPassword: 'a brand new passphrase 5' } });
    expect([refused.status, refused.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_INVALID']);
    const fresh = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'temp@example.com', password: again } })).json<{ passwordChangeToken: string }>().passwordChangeToken;
    expect((await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: fresh, newPassword: 'a brand new passphrase 5' } })).status).toBe(200);
  });
});


describe('identity second review regressions', () => {
  const client = { ip: '', userAgent: undefined, requestId: 't' };

  it('password-change-undoes-reset: a password change in flight loses to an admin reset made meanwhile', async () => {
    const id = await gateway();
    const service = id.gw.runtime.identity!.service;
    const boss = await service.bootstrapAdmin('boss@example.com');
    const attacker = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ access_token: string }>();
    const victim = await service.db.selectFrom('users').select('id').where('email', '=', 'victim@example.com').executeTakeFirstOrThrow();
    const hold = holdNextCall(id.gw.runtime.identity!.service.passwords, 'hash');
    const changing = id.call('PUT', '/api/v1/users/me/password', { token: attacker.access_token, json: { currentPassword: PASSWORD, newPassword: 'the attacker passphrase 8' } });
    await hold.inside;
    const otp = await service.resetPassword({ id: boss.id, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined }, victim.id, client);
    hold.release();
    const changed = await changing;
    expect(changed.status).not.toBe(200);
    expect((await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: 'the attacker passphrase 8' } })).status).toBe(401);
    const relogin = await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: otp } });
    expect([relogin.status, relogin.json().code]).toEqual([403, 'RMP_PASSWORD_CHANGE_REQUIRED']);
  });

  it('tokens-survive-password-change: a refresh made while the new password is hashed does not outlive the change', async () => {
    const id = await gateway();
    const owner = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ access_token: string }>();
    const stolen = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ refresh_token: string }>();
    const hold = holdNextCall(id.gw.runtime.identity!.service.passwords, 'hash');
    const changing = id.call('PUT', '/api/v1/users/me/password', { token: owner.access_token, json: { currentPassword: PASSWORD, newPassword: 'the owner passphrase 8' } });
    await hold.inside;
    const raced = (await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: stolen.refresh_token } })).json<{ access_token: string; refresh_token: string }>();
    hold.release();
    expect((await changing).status).toBe(200);
    const me = await id.call('GET', '/api/v1/users/me', { token: raced.access_token });
    expect([me.status, me.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
    expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: raced.refresh_token } })).status).toBe(401);
  });

  it('shed-attempt-locks-account: attempts the hasher sheds (503) do not count towards the lockout', async () => {
    const id = await gateway({ lockout: { threshold: 3, baseDelay: '1h', maxDelay: '1h' } });
    const passwords = id.gw.runtime.identity!.service.passwords;
    const original = passwords.verify.bind(passwords);
    passwords.verify = () => Promise.reject(new RampartError('RMP_OVERLOADED', { headers: { 'retry-after': '1' } }));
    for (let i = 0; i < 3; i++) expect((await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).status).toBe(503);
    passwords.verify = original;
    const row = await id.gw.runtime.identity!.service.db.selectFrom('users').select(['failed_logins', 'locked_until']).executeTakeFirstOrThrow();
    expect(row).toEqual({ failed_logins: 0, locked_until: null });
    expect((await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).status).toBe(200);
  });

  it('revoked-next-key-breaks-schedule: revoking the next key before it signs leaves a published next key to take over on time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-keys-'));
    const storage: Storage = openStorage(`sqlite:${join(dir, 'k.db')}`, '/');
    open.push(storage);
    await migrateToLatest(storage.db);
    const keys = new SigningKeys(storage.db, new MasterKey(randomBytes(32)), 'EdDSA', { rotateEveryMs: 30 * DAY, jwksMaxAgeMs: 600_000, retainMs: 900_000 });
    const t0 = Date.now();
    await keys.ensure(t0);
    const first = keys.list(t0);
    const next = first.find((k) => k.state === 'next')!.kid;
    expect(await keys.revoke(next, t0 + DAY)).toBe(true);
    const replacement = keys.list(t0 + DAY).find((k) => k.state === 'next')!;
    expect(replacement.kid).not.toBe(next);
    await keys.rotate(t0 + 2 * DAY);
    // A month on: the key published at day 1 and promoted by the rotation signs; nothing unpublished does.
    await keys.ensure(t0 + 31 * DAY);
    expect(keys.signer().kid).toBe(replacement.kid);
    expect(keys.list(t0 + 31 * DAY).some((k) => k.state === 'next')).toBe(true);
  });
});

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`last-admin-race on ${backend}`, () => {
    it('two admins removing each other at once leave one admin', async () => {
      const id = await startIdentityGateway({ backend });
      open.push(id);
      const service = id.gw.runtime.identity!.service;
      const a = await service.bootstrapAdmin('a@example.com');
      const b = await service.bootstrapAdmin('b@example.com');
      const as = (who: string) => ({ id: who, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined });
      const client = { ip: '', userAgent: undefined, requestId: 't' };
      const results = await Promise.allSettled([service.updateUser(as(a.id), a.id, { roles: ['user'] }, client), service.deleteUser(as(a.id), b.id, client)]);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['RMP_LAST_ADMIN']);
      const admins = (await service.db.selectFrom('users').select(['roles', 'disabled_at']).execute()).filter((u) => u.roles.includes('"admin"') && u.disabled_at === null);
      expect(admins).toHaveLength(1);
    });
  });
}

describe('session-from-stale-account', () => {
  const client = { ip: '', userAgent: undefined, requestId: 't' };

  it('a password change in flight makes its new session from the account as it is: demoted means no admin token, disabled means no change', async () => {
    const id = await gateway();
    const service = id.gw.runtime.identity!.service;
    const boss = await service.bootstrapAdmin('boss@example.com');
    const asBoss = { id: boss.id, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined };
    const victim = await service.db.selectFrom('users').select('id').where('email', '=', 'victim@example.com').executeTakeFirstOrThrow();
    await service.updateUser(asBoss, victim.id, { roles: ['admin'] }, client);
    const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: PASSWORD } })).json<{ access_token: string }>();

    const hold = holdNextCall(id.gw.runtime.identity!.service.passwords, 'hash');
    const changing = id.call('PUT', '/api/v1/users/me/password', { token: login.access_token, json: { currentPassword: PASSWORD, newPassword: 'a changed passphrase 9' } });
    await hold.inside;
    await service.updateUser(asBoss, victim.id, { roles: ['user'] }, client);
    hold.release();
    const changed = await changing;
    expect(changed.status).toBe(200);
    const token = changed.json<{ access_token: string }>().access_token;
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).roles).toEqual(['user']);
    expect((await id.call('GET', '/api/v1/users', { token })).status).toBe(403);

    const hold2 = holdNextCall(id.gw.runtime.identity!.service.passwords, 'hash');
    const again = id.call('PUT', '/api/v1/users/me/password', { token, json: { currentPassword: 'a changed passphrase 9', newPassword: 'another changed phrase 4' } });
    await hold2.inside;
    await service.updateUser(asBoss, victim.id, { status: 'disabled' }, client);
    hold2.release();
    expect((await again).status).not.toBe(200);
    await service.updateUser(asBoss, victim.id, { status: 'active' }, client);
    // The password did not change while disabled.
    expect((await id.call('POST', '/api/v1/auth/login', { json: { email: 'victim@example.com', password: 'a changed passphrase 9' } })).status).toBe(200);
  });
});
