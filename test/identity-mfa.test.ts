import * as OTPAuth from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { comparable, assertNoSecrets, postgresAvailable, startIdentityGateway, startNotesBehindIdentity, type IdentityGateway, type Reply } from './helpers/identity.js';
import type { TestUpstream } from './helpers/gateway.js';

/**
 * TOTP multi-factor authentication (issue 7, item 5) through a real HTTPS gateway, on both
 * backends: enrolment, login with a code or a recovery code, replay, lockout, disable, admin
 * reset, requireForRoles, and the MFA token's limits.
 *
 * Codes come from the secret with otpauth, for the real clock. A code is accepted once per 30 s
 * step, so a test uses the current step for the first code and the next step (accepted one step
 * early) for the second; a replay is the same code twice.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const PASSWORD = 'a long enough passphrase 7';
const PROBLEM = 'application/problem+json; charset=utf-8';
const LIMITS = { limits: { login: { limit: 1000, window: '1m' } } };

/** The code of the step `steps` away from now. */
const totp = (secret: string, steps = 0) => OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), timestamp: Date.now() + steps * 30_000 });
/** A code no step near now has. */
function wrongCode(secret: string): string {
  const near = new Set([-2, -1, 0, 1, 2].map((s) => totp(secret, s)));
  for (let n = 0; ; n++) {
    const candidate = String(n).padStart(6, '0');
    if (!near.has(candidate)) return candidate;
  }
}
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;


function problem(reply: Reply, status: number, code: string): Record<string, unknown> {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers['content-type']).toBe(PROBLEM);
  expect(reply.headers['cache-control']).toBe('no-store');
  const body = reply.json();
  expect(body.code).toBe(code);
  return body;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

interface Account {
  id: string;
  email: string;
  tokens: Tokens;
}

interface MfaAccount extends Account {
  secret: string;
  recoveryCodes: string[];
}

function helpers(id: IdentityGateway) {
  const service = id.gw.runtime.identity!.service;
  const login = (email: string, password = PASSWORD) => id.call('POST', '/api/v1/auth/login', { json: { email, password } });
  const account = async (email: string): Promise<Account> => {
    expect((await id.call('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } })).status).toBe(202);
    const reply = await login(email);
    expect(reply.status, reply.text).toBe(200);
    const tokens = reply.json<Tokens>();
    return { id: String(claimsOf(tokens.access_token).sub), email, tokens };
  };
  /** An account with TOTP on (enrolled and confirmed with the current step's code). */
  const withMfa = async (email: string): Promise<MfaAccount> => {
    const a = await account(email);
    const enrol = await id.call('POST', '/api/v1/users/me/mfa/enrol', { token: a.tokens.access_token, json: { currentPassword: PASSWORD } });
    expect(enrol.status, enrol.text).toBe(200);
    const { secret } = enrol.json<{ secret: string }>();
    const confirm = await id.call('POST', '/api/v1/users/me/mfa/confirm', { token: a.tokens.access_token, json: { code: totp(secret) } });
    expect(confirm.status, confirm.text).toBe(200);
    return { ...a, secret, recoveryCodes: confirm.json<{ recoveryCodes: string[] }>().recoveryCodes };
  };
  /** Logs in with the password: the 403 RMP_MFA_REQUIRED answer's MFA token. */
  const mfaToken = async (email: string): Promise<string> => String(problem(await login(email), 403, 'RMP_MFA_REQUIRED').mfaToken);
  const mfa = (json: Record<string, unknown>) => id.call('POST', '/api/v1/auth/mfa', { json });
  const audit = async () => {
    await id.gw.runtime.identity!.audit.flush();
    return service.db.selectFrom('audit_events').selectAll().orderBy('id').execute();
  };
  /** An admin (the bootstrap flow: one-time password, then a new password). */
  const admin = async (): Promise<string> => {
    const boot = await service.bootstrapAdmin('boss@example.com');
    const change = problem(await login('boss@example.com', boot.oneTimePassword), 403, 'RMP_PASSWORD_CHANGE_REQUIRED');
    const set = await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: change.passwordChangeToken, newPassword: 'the chief passphrase 2' } });
    expect(set.status, set.text).toBe(200);
    return set.json<Tokens>().access_token;
  };
  return { service, login, account, withMfa, mfaToken, mfa, audit, admin };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`TOTP MFA on ${backend}`, () => {
    async function setup(identity: Record<string, unknown> = {}): Promise<{ id: IdentityGateway; upstream: TestUpstream }> {
      const notes = await startNotesBehindIdentity({ backend, identity: { ...LIMITS, ...identity } });
      open.push(notes);
      return notes;
    }

    it('enrol → confirm → logout → login answers 403 RMP_MFA_REQUIRED → a code gives tokens with amr pwd+otp (kept on refresh); the same code again is refused', async () => {
      const { id, upstream } = await setup();
      const h = helpers(id);
      const replies: Reply[] = [];
      const call = async (method: string, path: string, o: { token?: string; json?: unknown } = {}) => {
        const r = await id.call(method, path, o);
        replies.push(r);
        assertNoSecrets(r);
        expect(r.headers['cache-control'], `${method} ${path}`).toBe('no-store');
        return r;
      };
      const ada = await h.account('ada@example.com');
      expect(claimsOf(ada.tokens.access_token).amr).toEqual(['pwd']);
      const token = ada.tokens.access_token;
      expect((await call('GET', '/api/v1/users/me/mfa', { token })).json()).toEqual({ totp: 'off', enabledAt: null, recoveryCodesLeft: 0 });

      // Enrolment re-authenticates with the password.
      problem(await call('POST', '/api/v1/users/me/mfa/enrol', { token, json: { currentPassword: 'not the password at all' } }), 403, 'RMP_PASSWORD_INCORRECT');
      problem(await call('POST', '/api/v1/users/me/mfa/enrol', { token, json: {} }), 400, 'RMP_VALIDATION_FAILED');
      const enrol = await call('POST', '/api/v1/users/me/mfa/enrol', { token, json: { currentPassword: PASSWORD } });
      expect(enrol.status).toBe(200);
      const enrolment = enrol.json<{ secret: string; otpauthUri: string; qrCode: string }>();
      expect(Object.keys(enrolment).sort()).toEqual(['otpauthUri', 'qrCode', 'secret']);
      expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(enrolment.otpauthUri).toBe(`otpauth://totp/Rampart:ada%40example.com?issuer=Rampart&secret=${enrolment.secret}&algorithm=SHA1&digits=6&period=30`);
      expect(enrolment.qrCode).toMatch(/^data:image\/gif;base64,R0lGOD/);
      expect((await call('GET', '/api/v1/users/me/mfa', { token })).json()).toMatchObject({ totp: 'pending' });
      // Pending is not on: login still needs only the password.
      expect((await h.login('ada@example.com')).status).toBe(200);

      const secret = enrolment.secret;
      problem(await call('POST', '/api/v1/users/me/mfa/confirm', { token, json: { code: wrongCode(secret) } }), 401, 'RMP_MFA_CODE_INVALID');
      const first = totp(secret);
      const confirmed = await call('POST', '/api/v1/users/me/mfa/confirm', { token, json: { code: first } });
      expect(confirmed.status).toBe(200);
      const { recoveryCodes } = confirmed.json<{ recoveryCodes: string[] }>();
      expect(recoveryCodes).toHaveLength(10);
      problem(await call('POST', '/api/v1/users/me/mfa/enrol', { token, json: { currentPassword: PASSWORD } }), 409, 'RMP_MFA_ALREADY_ENABLED');
      expect((await call('GET', '/api/v1/users/me/mfa', { token })).json()).toEqual({ totp: 'on', enabledAt: expect.any(String), recoveryCodesLeft: 10 });
      // At rest: encrypted, not the base32 secret.
      const row = await h.service.db.selectFrom('user_mfa').selectAll().where('user_id', '=', ada.id).executeTakeFirstOrThrow();
      expect(row.secret_encrypted).not.toContain(secret);
      expect(row.secret_encrypted).toMatch(/^v1\.[\w-]+\.[\w-]+$/);

      expect((await call('POST', '/api/v1/auth/logout', { token })).status).toBe(204);
      const families = async () => (await h.service.db.selectFrom('refresh_families').select('id').where('user_id', '=', ada.id).execute()).length;
      const before = await families();
      const challenge = problem(await call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: PASSWORD } }), 403, 'RMP_MFA_REQUIRED');
      expect(challenge).toMatchObject({ error: 'mfa_required', mfaToken: expect.any(String), expiresIn: 300, instance: '/api/v1/auth/login' });
      expect(challenge.access_token).toBeUndefined();
      expect(await families()).toBe(before);
      const mfaToken = String(challenge.mfaToken);
      expect(JSON.parse(Buffer.from(mfaToken.split('.')[0]!, 'base64url').toString())).toMatchObject({ typ: 'rampart-mfa+jwt' });
      expect(claimsOf(mfaToken)).toMatchObject({ aud: 'https://localhost#mfa', purpose: 'mfa', sub: ada.id });
      // The MFA token opens nothing else.
      const calls = upstream.requests.length;
      problem(await call('GET', '/api/notes/1', { token: mfaToken }), 401, 'RMP_AUTH_TOKEN_INVALID');
      problem(await call('GET', '/api/v1/users/me', { token: mfaToken }), 401, 'RMP_AUTH_TOKEN_INVALID');
      expect(upstream.requests.length).toBe(calls);

      // The code that confirmed the enrolment was used: refused (a replay), the token not spent.
      problem(await call('POST', '/api/v1/auth/mfa', { json: { mfaToken, code: first } }), 401, 'RMP_MFA_CODE_INVALID');
      problem(await call('POST', '/api/v1/auth/mfa', { json: { mfaToken } }), 400, 'RMP_VALIDATION_FAILED');
      problem(await call('POST', '/api/v1/auth/mfa', { json: { mfaToken, code: totp(secret, 1), recoveryCode: recoveryCodes[0] } }), 400, 'RMP_VALIDATION_FAILED');
      const second = totp(secret, 1);
      const done = await call('POST', '/api/v1/auth/mfa', { json: { mfaToken, code: second } });
      expect(done.status, done.text).toBe(200);
      const tokens = done.json<Tokens & { token_type: string; expires_in: number; scope: string }>();
      expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'notes:read notes:write' });
      expect(claimsOf(tokens.access_token)).toMatchObject({ sub: ada.id, amr: ['pwd', 'otp'] });
      expect((await call('GET', '/api/notes/1', { token: tokens.access_token })).status).toBe(200);
      // The MFA token is spent; a new login with the same code: refused (the same code twice).
      problem(await call('POST', '/api/v1/auth/mfa', { json: { mfaToken, code: totp(secret, 1) } }), 401, 'RMP_AUTH_TOKEN_INVALID');
      problem(await call('POST', '/api/v1/auth/mfa', { json: { mfaToken: await h.mfaToken('ada@example.com'), code: second } }), 401, 'RMP_MFA_CODE_INVALID');

      // The session remembers how it was authenticated.
      const stored = await h.service.db.selectFrom('refresh_families').select('amr').where('id', '=', String(claimsOf(tokens.access_token).sid)).executeTakeFirstOrThrow();
      expect(stored.amr).toBe('["pwd","otp"]');
      const refreshed = await call('POST', '/api/v1/auth/refresh', { json: { refresh_token: tokens.refresh_token } });
      expect(refreshed.status).toBe(200);
      expect(claimsOf(refreshed.json<Tokens>().access_token).amr).toEqual(['pwd', 'otp']);
      const metadata = await id.call('GET', '/.well-known/oauth-authorization-server');
      expect(metadata.json<{ claims_supported: string[] }>().claims_supported).toContain('amr');

      // Only the enrolment answer ever carried the secret.
      const carrying = replies.filter((r) => r.text.includes(secret));
      expect(carrying).toEqual([enrol]);
      const events = await h.audit();
      const types = events.map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['authn_mfa_enrol', 'authn_mfa_enabled', 'authn_mfa_required', 'authn_mfa_fail']));
      const success = events.filter((e) => e.type === 'authn_login_success').map((e) => (e.data === null ? null : JSON.parse(e.data)));
      expect(success.at(-1)).toEqual({ mfa: 'totp' });
      expect(events.filter((e) => e.type === 'authn_mfa_fail').map((e) => JSON.parse(e.data!).reason)).toEqual(['code', 'replay', 'replay']);
    });

    it('of two logins racing with one code, exactly one gets a session', async () => {
      const { id } = await setup();
      const h = helpers(id);
      const ada = await h.withMfa('ada@example.com');
      const [a, b] = [await h.mfaToken(ada.email), await h.mfaToken(ada.email)];
      const code = totp(ada.secret, 1);
      const answers = await Promise.all([h.mfa({ mfaToken: a, code }), h.mfa({ mfaToken: b, code })]);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 401]);
    });

    it('a wrong code answers 401 RMP_MFA_CODE_INVALID; past the threshold the second factor locks, answering a right code the same; the password count is untouched', async () => {
      const { id } = await setup({ mfa: { lockout: { threshold: 3, baseDelay: '1h', maxDelay: '1h' } } });
      const h = helpers(id);
      const ada = await h.withMfa('ada@example.com');
      const mfaToken = await h.mfaToken(ada.email);
      const wrong: Reply[] = [];
      for (let i = 0; i < 3; i++) wrong.push(await h.mfa({ mfaToken, code: wrongCode(ada.secret) }));
      for (const r of wrong) problem(r, 401, 'RMP_MFA_CODE_INVALID');
      // Locked: the right code, and a recovery code, answer exactly like a wrong one.
      const right = await h.mfa({ mfaToken, code: totp(ada.secret, 1) });
      const recovery = await h.mfa({ mfaToken, recoveryCode: ada.recoveryCodes[0] });
      for (const r of [right, recovery, wrong[1]!, wrong[2]!]) expect(comparable(r)).toBe(comparable(wrong[0]!));
      expect(right.text).not.toContain('lock');
      const row = await h.service.db.selectFrom('user_mfa').select(['failed', 'locked_until']).where('user_id', '=', ada.id).executeTakeFirstOrThrow();
      expect(row.failed).toBe(3);
      expect(Date.parse(row.locked_until!)).toBeGreaterThan(Date.now() + 3_500_000);
      const user = await h.service.db.selectFrom('users').select(['failed_logins', 'locked_until']).where('id', '=', ada.id).executeTakeFirstOrThrow();
      expect(user).toEqual({ failed_logins: 0, locked_until: null });
      // The password still logs in (its own count); the second factor stays locked.
      problem(await h.login(ada.email), 403, 'RMP_MFA_REQUIRED');
      const events = await h.audit();
      const locks = events.filter((e) => e.type === 'authn_mfa_lock');
      expect(locks).toHaveLength(1);
      expect(locks[0]).toMatchObject({ level: 'WARN', subject: ada.id, actor: null });
      expect(events.filter((e) => e.type === 'authn_mfa_fail').map((e) => JSON.parse(e.data!).reason)).toEqual(['code', 'code', 'code', 'locked', 'locked']);
    });

    it('recovery codes work once each (a used one is refused), as typed, and can be replaced with password + code', async () => {
      const { id } = await setup();
      const h = helpers(id);
      const ada = await h.withMfa('ada@example.com');
      const [one, two, three] = ada.recoveryCodes as [string, string, string];
      expect(one).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/);
      const used = await h.mfa({ mfaToken: await h.mfaToken(ada.email), recoveryCode: one });
      expect(used.status, used.text).toBe(200);
      const tokens = used.json<Tokens>();
      expect(claimsOf(tokens.access_token).amr).toEqual(['pwd', 'otp']);
      problem(await h.mfa({ mfaToken: await h.mfaToken(ada.email), recoveryCode: one }), 401, 'RMP_MFA_CODE_INVALID');
      const typed = await h.mfa({ mfaToken: await h.mfaToken(ada.email), recoveryCode: two.toUpperCase().replace(/-/g, ' ') });
      expect(typed.status, typed.text).toBe(200);
      expect((await id.call('GET', '/api/v1/users/me/mfa', { token: tokens.access_token })).json()).toMatchObject({ recoveryCodesLeft: 8 });

      // New codes: password and a second factor (a recovery code may stand in for the TOTP code).
      const path = '/api/v1/users/me/mfa/recovery-codes';
      problem(await id.call('POST', path, { token: tokens.access_token, json: { currentPassword: PASSWORD } }), 400, 'RMP_VALIDATION_FAILED');
      problem(await id.call('POST', path, { token: tokens.access_token, json: { currentPassword: 'not the password at all', code: totp(ada.secret, 1) } }), 403, 'RMP_PASSWORD_INCORRECT');
      const replaced = await id.call('POST', path, { token: tokens.access_token, json: { currentPassword: PASSWORD, recoveryCode: three } });
      expect(replaced.status, replaced.text).toBe(200);
      const fresh = replaced.json<{ recoveryCodes: string[] }>().recoveryCodes;
      expect(fresh).toHaveLength(10);
      problem(await h.mfa({ mfaToken: await h.mfaToken(ada.email), recoveryCode: ada.recoveryCodes[3] }), 401, 'RMP_MFA_CODE_INVALID');
      expect((await h.mfa({ mfaToken: await h.mfaToken(ada.email), recoveryCode: fresh[0] })).status).toBe(200);
      const rows = await h.service.db.selectFrom('recovery_codes').select('code_hash').where('user_id', '=', ada.id).execute();
      expect(rows).toHaveLength(10);
      for (const c of [...ada.recoveryCodes, ...fresh]) expect(JSON.stringify(rows)).not.toContain(c.replace(/-/g, ''));
      const events = await h.audit();
      const recoveries = events.filter((e) => e.type === 'authn_mfa_recovery_used');
      // The third was spent on the replacement, which left 10 new ones.
      expect(recoveries.map((e) => JSON.parse(e.data!).left)).toEqual([9, 8, 10, 9]);
      expect(recoveries[0]).toMatchObject({ level: 'WARN', subject: ada.id });
      const logins = events.filter((e) => e.type === 'authn_login_success' && e.data !== null).map((e) => JSON.parse(e.data!));
      expect(logins).toContainEqual({ mfa: 'recovery' });
      expect(events.map((e) => e.type)).toContain('authn_mfa_recovery_codes_created');
    });

    it('disable needs the password and a code; afterwards the password alone logs in; only the owner may', async () => {
      const { id } = await setup();
      const h = helpers(id);
      const ada = await h.withMfa('ada@example.com');
      const bob = await h.withMfa('bob@example.com');
      const path = '/api/v1/users/me/mfa/disable';
      const token = ada.tokens.access_token;
      problem(await id.call('POST', path, { token, json: { currentPassword: PASSWORD } }), 400, 'RMP_VALIDATION_FAILED');
      problem(await id.call('POST', path, { token, json: { code: totp(ada.secret, 1) } }), 400, 'RMP_VALIDATION_FAILED');
      // A wrong password: refused before the code is looked at (the code stays usable).
      const code = totp(ada.secret, 1);
      problem(await id.call('POST', path, { token, json: { currentPassword: 'not the password at all', code } }), 403, 'RMP_PASSWORD_INCORRECT');
      problem(await id.call('POST', path, { token, json: { currentPassword: PASSWORD, code: wrongCode(ada.secret) } }), 401, 'RMP_MFA_CODE_INVALID');
      // Someone else's second factor: 404, as for an id that does not exist.
      problem(await id.call('POST', `/api/v1/users/${ada.id}/mfa/disable`, { token: bob.tokens.access_token, json: { currentPassword: PASSWORD, code: totp(bob.secret, 1) } }), 404, 'RMP_OBJECT_NOT_FOUND');
      problem(await id.call('GET', `/api/v1/users/${ada.id}/mfa`, { token: bob.tokens.access_token }), 404, 'RMP_OBJECT_NOT_FOUND');
      problem(await id.call('POST', '/api/v1/users/me/mfa/nothing', { token, json: {} }), 404, 'RMP_ROUTE_NOT_FOUND');
      const disabled = await id.call('POST', `/api/v1/users/${ada.id}/mfa/disable`, { token, json: { currentPassword: PASSWORD, code } });
      expect(disabled.status, disabled.text).toBe(204);
      expect((await id.call('GET', '/api/v1/users/me/mfa', { token })).json()).toEqual({ totp: 'off', enabledAt: null, recoveryCodesLeft: 0 });
      problem(await id.call('POST', path, { token, json: { currentPassword: PASSWORD, code: totp(ada.secret, 1) } }), 409, 'RMP_MFA_NOT_ENROLLED');
      const plain = await h.login(ada.email);
      expect(plain.status).toBe(200);
      expect(claimsOf(plain.json<Tokens>().access_token).amr).toEqual(['pwd']);
      // Bob still has his.
      problem(await h.login(bob.email), 403, 'RMP_MFA_REQUIRED');
      const events = await h.audit();
      expect(events.filter((e) => e.type === 'authn_mfa_disabled')).toMatchObject([{ level: 'WARN', actor: ada.id, subject: ada.id }]);
      expect(events.filter((e) => e.type === 'authz_fail').map((e) => e.description)).toContain('refused: second factor of another user');
    });

    it('an admin resets a lost second factor: every session of the user ends, the password alone logs in again', async () => {
      const { id } = await setup();
      const h = helpers(id);
      const admin = await h.admin();
      const ada = await h.withMfa('ada@example.com');
      const bob = await h.account('bob@example.com');
      problem(await id.call('DELETE', `/api/v1/users/${ada.id}/mfa`, { token: bob.tokens.access_token }), 403, 'RMP_AUTHZ_DENIED');
      problem(await id.call('DELETE', `/api/v1/users/${ada.id}/mfa`, { token: ada.tokens.access_token }), 403, 'RMP_AUTHZ_DENIED');
      expect((await id.call('GET', `/api/v1/users/${ada.id}/mfa`, { token: admin })).json()).toMatchObject({ totp: 'on', recoveryCodesLeft: 10 });
      // Admins see the status but cannot enrol or disable for someone else.
      problem(await id.call('POST', `/api/v1/users/${ada.id}/mfa/enrol`, { token: admin, json: { currentPassword: 'the chief passphrase 2' } }), 404, 'RMP_OBJECT_NOT_FOUND');
      const reset = await id.call('DELETE', `/api/v1/users/${ada.id}/mfa`, { token: admin });
      expect(reset.status, reset.text).toBe(204);
      expect(reset.headers['cache-control']).toBe('no-store');
      problem(await id.call('GET', '/api/v1/users/me', { token: ada.tokens.access_token }), 401, 'RMP_AUTH_TOKEN_REVOKED');
      problem(await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: ada.tokens.refresh_token } }), 401, 'RMP_REFRESH_TOKEN_INVALID');
      expect((await id.call('GET', `/api/v1/users/${ada.id}/mfa`, { token: admin })).json()).toEqual({ totp: 'off', enabledAt: null, recoveryCodesLeft: 0 });
      expect(await h.service.db.selectFrom('recovery_codes').select('id').where('user_id', '=', ada.id).execute()).toEqual([]);
      expect((await h.login(ada.email)).status).toBe(200);
      problem(await id.call('DELETE', '/api/v1/users/00000000-0000-4000-8000-000000000000/mfa', { token: admin }), 404, 'RMP_OBJECT_NOT_FOUND');
      const events = await h.audit();
      const adminId = String(claimsOf(admin).sub);
      expect(events.filter((e) => e.type === 'authn_mfa_reset')).toMatchObject([{ level: 'WARN', actor: adminId, subject: ada.id }]);
      expect(events.filter((e) => e.type === 'authn_token_revoked' && e.subject === ada.id).map((e) => JSON.parse(e.data!).reason)).toContain('mfa_reset');
    });

    it('requireForRoles: [admin] makes an admin enrol during login (after the one-time password); the enrolment token does nothing else', async () => {
      const { id } = await setup({ mfa: { requireForRoles: ['admin'], issuer: 'Acme API' } });
      const h = helpers(id);
      const boot = await h.service.bootstrapAdmin('boss@example.com');
      const change = problem(await h.login('boss@example.com', boot.oneTimePassword), 403, 'RMP_PASSWORD_CHANGE_REQUIRED');
      const NEW = 'the chief passphrase 2';
      const required = problem(await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: change.passwordChangeToken, newPassword: NEW } }), 403, 'RMP_MFA_ENROLMENT_REQUIRED');
      expect(required).toMatchObject({ error: 'mfa_enrolment_required', expiresIn: 300 });
      const enrolToken = String(required.mfaToken);
      expect(claimsOf(enrolToken).purpose).toBe('mfa-enrol');
      // The password is set; the login with it asks for enrolment again (no session meanwhile).
      const again = problem(await h.login('boss@example.com', NEW), 403, 'RMP_MFA_ENROLMENT_REQUIRED');
      expect(again.mfaToken).not.toBe(enrolToken);
      expect(await h.service.db.selectFrom('refresh_families').select('id').where('user_id', '=', boot.id).execute()).toEqual([]);
      // Not a code token, not an access token.
      problem(await h.mfa({ mfaToken: enrolToken, code: '123456' }), 401, 'RMP_AUTH_TOKEN_INVALID');
      problem(await id.call('GET', '/api/v1/users/me', { token: enrolToken }), 401, 'RMP_AUTH_TOKEN_INVALID');
      const enrol = await id.call('POST', '/api/v1/auth/mfa-enrol', { json: { mfaToken: enrolToken } });
      expect(enrol.status, enrol.text).toBe(200);
      expect(enrol.headers['cache-control']).toBe('no-store');
      const { secret, otpauthUri } = enrol.json<{ secret: string; otpauthUri: string }>();
      expect(otpauthUri).toMatch(/^otpauth:\/\/totp\/Acme%20API:boss%40example\.com\?issuer=Acme%20API&/);
      problem(await id.call('POST', '/api/v1/auth/mfa-enrol-confirm', { json: { mfaToken: enrolToken, code: wrongCode(secret) } }), 401, 'RMP_MFA_CODE_INVALID');
      const confirmed = await id.call('POST', '/api/v1/auth/mfa-enrol-confirm', { json: { mfaToken: enrolToken, code: totp(secret) } });
      expect(confirmed.status, confirmed.text).toBe(200);
      const session = confirmed.json<Tokens & { recoveryCodes: string[] }>();
      expect(session.recoveryCodes).toHaveLength(10);
      expect(claimsOf(session.access_token)).toMatchObject({ sub: boot.id, roles: ['admin'], amr: ['pwd', 'otp'] });
      expect((await id.call('GET', '/api/v1/users', { token: session.access_token })).status).toBe(200);
      // Spent; and now that TOTP is on, login asks for a code, not an enrolment.
      problem(await id.call('POST', '/api/v1/auth/mfa-enrol', { json: { mfaToken: enrolToken } }), 401, 'RMP_AUTH_TOKEN_INVALID');
      problem(await id.call('POST', '/api/v1/auth/mfa-enrol', { json: { mfaToken: String(again.mfaToken) } }), 409, 'RMP_MFA_ALREADY_ENABLED');
      const next = problem(await h.login('boss@example.com', NEW), 403, 'RMP_MFA_REQUIRED');
      expect((await h.mfa({ mfaToken: next.mfaToken, code: totp(secret, 1) })).status).toBe(200);
      // A role not listed logs in with the password alone.
      expect((await h.account('user@example.com')).tokens.access_token).toEqual(expect.any(String));
    });

    it('an MFA token is refused when it is another user\'s, expired, reused, tampered with, or its password changed since', async () => {
      const { id } = await setup();
      const h = helpers(id);
      const ada = await h.withMfa('ada@example.com');
      const bob = await h.withMfa('bob@example.com');
      // Bob's token with Ada's code: checked against Bob's secret, refused; Ada's code is not used up.
      const adaCode = totp(ada.secret, 1);
      problem(await h.mfa({ mfaToken: await h.mfaToken(bob.email), code: adaCode }), 401, 'RMP_MFA_CODE_INVALID');
      expect((await h.mfa({ mfaToken: await h.mfaToken(ada.email), code: adaCode })).status).toBe(200);
      // Expired (issued 301 s ago), with a binding that is right otherwise.
      const row = await h.service.db.selectFrom('users').select('password_hash').where('id', '=', bob.id).executeTakeFirstOrThrow();
      const expired = await h.service.mfa.tokens.issue(bob.id, 'mfa', h.service.hasher.auditId(row.password_hash), Date.now() - 301_000);
      problem(await h.mfa({ mfaToken: expired.token, code: totp(bob.secret, 1) }), 401, 'RMP_AUTH_TOKEN_INVALID');
      const fresh = await h.service.mfa.tokens.issue(bob.id, 'mfa', h.service.hasher.auditId(row.password_hash));
      // Tampered: another subject under the same signature.
      const [head, , sig] = fresh.token.split('.');
      const forged = `${head}.${Buffer.from(JSON.stringify({ ...claimsOf(fresh.token), sub: ada.id })).toString('base64url')}.${sig}`;
      problem(await h.mfa({ mfaToken: forged, code: totp(ada.secret, 1) }), 401, 'RMP_AUTH_TOKEN_INVALID');
      // Not an MFA token at all: an access token, a password-change token.
      problem(await h.mfa({ mfaToken: bob.tokens.access_token, code: totp(bob.secret, 1) }), 401, 'RMP_AUTH_TOKEN_INVALID');
      const pwc = await h.service.tokens.issuePasswordChange(bob.id, h.service.hasher.auditId(row.password_hash));
      problem(await h.mfa({ mfaToken: pwc.token, code: totp(bob.secret, 1) }), 401, 'RMP_AUTH_TOKEN_INVALID');
      // The password changes after the login: the token it gave is void.
      const pending = await h.mfaToken(bob.email);
      const changed = await id.call('PUT', '/api/v1/users/me/password', { token: bob.tokens.access_token, json: { currentPassword: PASSWORD, newPassword: 'another long passphrase 9' } });
      expect(changed.status).toBe(200);
      problem(await h.mfa({ mfaToken: pending, code: totp(bob.secret, 1) }), 401, 'RMP_AUTH_TOKEN_INVALID');
      // Reused after success.
      const once = await h.mfaToken(ada.email);
      expect((await h.mfa({ mfaToken: once, recoveryCode: ada.recoveryCodes[0] })).status).toBe(200);
      problem(await h.mfa({ mfaToken: once, recoveryCode: ada.recoveryCodes[1] }), 401, 'RMP_AUTH_TOKEN_INVALID');
      expect(await h.service.db.selectFrom('recovery_codes').select('id').where('user_id', '=', ada.id).where('used_at', 'is', null).execute()).toHaveLength(9);
      // None of these counted as a wrong code against Bob beyond the one above.
      expect((await h.service.db.selectFrom('user_mfa').select('failed').where('user_id', '=', bob.id).executeTakeFirstOrThrow()).failed).toBe(1);
    });
  });
}

describe('TOTP MFA in browser mode', () => {
  it('the second step sets the refresh cookie like a login', async () => {
    const id = await startIdentityGateway({ backend: 'sqlite', identity: { browser: { refreshCookie: true } } });
    open.push(id);
    const h = helpers(id);
    const ada = await h.withMfa('ada@example.com');
    const done = await h.mfa({ mfaToken: await h.mfaToken(ada.email), code: totp(ada.secret, 1) });
    expect(done.status, done.text).toBe(200);
    expect(done.json()).toMatchObject({ access_token: expect.any(String), csrf_token: expect.any(String) });
    expect(done.json().refresh_token).toBeUndefined();
    expect((done.headers['set-cookie'] as string[]).some((c) => c.startsWith('__Host-rampart-refresh=') && /HttpOnly/.test(c))).toBe(true);
  });
});
