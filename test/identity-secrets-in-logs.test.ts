import * as OTPAuth from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { startUpstream } from './helpers/gateway.js';
import { adminToken, startIdentityGateway, startNotesBehindIdentity, type IdentityGateway } from './helpers/identity.js';

/**
 * Nothing secret reaches the logs: every password, token, one-time password and invitation this
 * run hands out or receives is searched for in every line the gateway logged (access log, events,
 * errors) — including from failures, where a careless error path would echo its input.
 */
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** Every secret, searched for in every log line and audit row (whole, and recognizable pieces of long ones). */
async function assertNotLogged(id: IdentityGateway, secrets: readonly string[], codes: readonly string[] = []): Promise<string> {
  const service = id.gw.runtime.identity!.service;
  const text = id.gw.logs.lines.map((l) => JSON.stringify(l)).join('\n');
  expect(id.gw.logs.lines.length).toBeGreaterThan(20);
  for (const secret of secrets) {
    expect(text.includes(secret), `a log line holds a secret (${secret.slice(0, 6)}…)`).toBe(false);
    // Tokens are long: no recognizable piece of one either (the JWT signature, the middle of an opaque token).
    if (secret.includes('.')) expect(text.includes(secret.split('.')[2]!)).toBe(false);
    else if (secret.length >= 40) expect(text.includes(secret.slice(10, 30))).toBe(false);
  }
  // Six-digit codes could match any number by chance: a leak would be a string value or a query parameter.
  for (const code of codes) for (const form of [`"${code}"`, `=${code}`]) expect(text.includes(form), `a log line holds a code (${form})`).toBe(false);
  // The audit table neither.
  const audit = JSON.stringify(await service.db.selectFrom('audit_events').selectAll().execute());
  for (const secret of secrets) {
    expect(audit.includes(secret)).toBe(false);
    if (secret.length >= 40 && !secret.includes('.')) expect(audit.includes(secret.slice(10, 30))).toBe(false);
  }
  for (const code of codes) expect(audit.includes(`"${code}"`) || audit.includes(`=${code}`)).toBe(false);
  return audit;
}

describe('secrets never logged', () => {
  it('no password, access or refresh token, one-time password, change token, invitation, TOTP secret or code, recovery code or MFA token appears in any log line', async () => {
    const notes = await startNotesBehindIdentity({ backend: 'sqlite', identity: { registration: 'invite' } });
    open.push(notes);
    const id = notes.id;
    const secrets: string[] = [];
    const keep = (...values: (string | undefined)[]) => {
      for (const v of values) if (v !== undefined) secrets.push(v);
    };
    const service = id.gw.runtime.identity!.service;
    const boss = await service.bootstrapAdmin('boss@example.com');
    keep(boss.oneTimePassword);
    const change = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'boss@example.com', password: boss.oneTimePassword } })).json<{ passwordChangeToken: string }>();
    keep(change.passwordChangeToken);
    const bossPassword = 'the chief passphrase 2';
    keep(bossPassword);
    const admin = (await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: change.passwordChangeToken, newPassword: bossPassword } })).json<{ access_token: string; refresh_token: string }>();
    keep(admin.access_token, admin.refresh_token);
    const invite = (await id.call('POST', '/api/v1/invites', { token: admin.access_token, json: { email: 'ada@example.com' } })).json<{ token: string }>();
    keep(invite.token);
    const password = 'a long enough passphrase 7';
    keep(password);
    expect((await id.call('POST', '/api/v1/auth/register', { json: { email: 'ada@example.com', password, invite: invite.token } })).status).toBe(201);
    const ada = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password } })).json<{ access_token: string; refresh_token: string }>();
    keep(ada.access_token, ada.refresh_token);
    // The second factor: the TOTP secret, codes (right, wrong, replayed), recovery codes, MFA tokens.
    const codes: string[] = [];
    const totp = (secret: string, steps = 0) => OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(secret), timestamp: Date.now() + steps * 30_000 });
    const enrolment = (await id.call('POST', '/api/v1/users/me/mfa/enrol', { token: ada.access_token, json: { currentPassword: password } })).json<{ secret: string }>();
    keep(enrolment.secret);
    const first = totp(enrolment.secret);
    codes.push(first);
    const { recoveryCodes } = (await id.call('POST', '/api/v1/users/me/mfa/confirm', { token: ada.access_token, json: { code: first } })).json<{ recoveryCodes: string[] }>();
    expect(recoveryCodes).toHaveLength(10);
    keep(...recoveryCodes, ...recoveryCodes.map((c) => c.replace(/-/g, '')));
    const mfaToken = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password } })).json<{ mfaToken: string }>().mfaToken;
    keep(mfaToken);
    const wrongCode = first === '000000' ? '111111' : '000000';
    codes.push(wrongCode);
    await id.call('POST', '/api/v1/auth/mfa', { json: { mfaToken, code: wrongCode } });
    await id.call('POST', '/api/v1/auth/mfa', { json: { mfaToken, code: first } });
    // A token and a code in the query string (refused there, and still never logged).
    await id.call('POST', `/api/v1/auth/mfa?mfaToken=${mfaToken}&code=${first}&recoveryCode=${recoveryCodes[1]!}`, { json: { mfaToken, recoveryCode: recoveryCodes[0] } });
    const mfaToken2 = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password } })).json<{ mfaToken: string }>().mfaToken;
    keep(mfaToken2);
    await id.call('POST', '/api/v1/auth/mfa', { json: { mfaToken: mfaToken2, recoveryCode: recoveryCodes[0] } });
    const nextCode = totp(enrolment.secret, 1);
    codes.push(nextCode);
    const fresh = (await id.call('POST', '/api/v1/users/me/mfa/recovery-codes', { token: ada.access_token, json: { currentPassword: password, code: nextCode } })).json<{ recoveryCodes: string[] }>();
    expect(fresh.recoveryCodes).toHaveLength(10);
    keep(...fresh.recoveryCodes);
    // Failures with secrets in them: wrong passwords, bad and reused tokens, a token in the query.
    const wrong = 'not my passphrase at all 3';
    keep(wrong);
    await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: wrong } });
    await id.call('POST', '/api/v1/auth/login', { json: { email: 'nobody@example.com', password: wrong } });
    await id.call('GET', `/api/notes/1?access_token=${ada.access_token}`);
    await id.call('GET', '/api/notes/1', { token: ada.access_token });
    const next = (await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: ada.refresh_token } })).json<{ access_token: string; refresh_token: string }>();
    keep(next.access_token, next.refresh_token);
    await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: ada.refresh_token } });
    await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: 'x'.repeat(43) } });
    const reset = await service.resetPassword({ id: boss.id, roles: ['admin'], sid: undefined, jti: undefined, exp: undefined }, (await service.db.selectFrom('users').select('id').where('email', '=', 'ada@example.com').executeTakeFirstOrThrow()).id, { ip: '', userAgent: undefined, requestId: 't' });
    keep(reset);
    const created = (await id.call('POST', '/api/v1/users', { token: admin.access_token, json: { email: 'bob@example.com' } })).json<{ oneTimePassword: string }>();
    keep(created.oneTimePassword);
    await id.call('POST', '/api/v1/auth/logout', { token: admin.access_token, json: { refresh_token: admin.refresh_token } });
    await id.call('GET', '/api/v1/users/me', { token: admin.access_token });
    await id.gw.runtime.identity!.audit.flush();
    // Access-log lines are written in batches: wait for the last request's line.
    await id.gw.logs.waitFor((l) => typeof l.path === 'string' && (l.path as string).endsWith('/api/v1/users/me'));

    expect(secrets.length).toBeGreaterThanOrEqual(14 + 1 + 20 + 2 + 10);
    const audit = await assertNotLogged(id, secrets, codes);
    // The MFA flow was audited (so the check above looked at its events).
    for (const type of ['authn_mfa_enrol', 'authn_mfa_enabled', 'authn_mfa_required', 'authn_mfa_fail', 'authn_mfa_recovery_used', 'authn_mfa_recovery_codes_created']) expect(audit).toContain(`"${type}"`);
    expect(audit).not.toContain('ada@example.com');
  });
  it('no API key, client secret, client token or client assertion appears in any log line or audit row, whatever endpoint or failure it went through', async () => {
    const upstream = await startUpstream();
    open.push(upstream);
    const id = await startIdentityGateway({
      backend: 'sqlite',
      identity: { scopes: { user: ['notes:read'], admin: ['notes:read'] } },
      upstreams: { notes: { targets: [{ url: upstream.url }] } },
      routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { jwt: { identity: true }, 'api-key': { identity: true } } }],
    });
    open.push(id);
    const secrets: string[] = [];
    const keep = (...values: (string | undefined)[]) => {
      for (const v of values) if (v !== undefined) secrets.push(v);
    };
    const admin = await adminToken(id);
    keep(admin);
    const form = (path: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
      id.call('POST', path, { body: new URLSearchParams(params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
    const basic = (c: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${c}:${secret}`).toString('base64')}` });

    // API keys: made, used, used in the query string (refused), revoked at the endpoint, used again.
    const key = (await id.call('POST', '/api/v1/api-keys', { token: admin, json: { name: 'k' } })).json<{ key: string }>().key;
    keep(key);
    expect((await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': key } })).status).toBe(200);
    await id.call('GET', `/api/notes/1?api_key=${key}`, { headers: { 'x-api-key': key } });
    await id.call('GET', `/api/notes/1?key=${key}&token=${key}`);
    await form('/oauth/revoke', { token: key, client_id: 'rampart' });
    await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': key } });
    await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': `${key.slice(0, -1)}x` } });

    // Clients: a secret made and rotated, tokens by Basic and by post, wrong secrets, secrets in the URL.
    const client = (await id.call('POST', '/api/v1/clients', { token: admin, json: { id: 'billing', name: 'B', scopes: ['notes:read'] } })).json<{ secret: string }>();
    keep(client.secret);
    const rotated = (await id.call('POST', '/api/v1/clients/billing/secrets', { token: admin, json: { overlap: '1h' } })).json<{ secret: string }>();
    keep(rotated.secret);
    const token = (await form('/oauth/token', { grant_type: 'client_credentials' }, basic('billing', client.secret))).json<{ access_token: string }>().access_token;
    keep(token);
    await form('/oauth/token', { grant_type: 'client_credentials' }, basic('billing', `${rotated.secret}x`));
    await form('/oauth/token', { grant_type: 'client_credentials', client_id: 'billing', client_secret: rotated.secret });
    await id.call('POST', `/oauth/token?client_id=billing&client_secret=${rotated.secret}`, { body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect((await id.call('GET', '/api/notes/1', { token })).status).toBe(200);
    await form('/oauth/introspect', { token }, basic('billing', rotated.secret));
    await form('/oauth/introspect', { token: key }, basic('billing', rotated.secret));
    await form('/oauth/revoke', { token }, basic('billing', rotated.secret));

    // A private_key_jwt client: its assertion, used twice (the second is a replay).
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    await id.call('POST', '/api/v1/clients', { token: admin, json: { id: 'signer', name: 'S', scopes: ['notes:read'], authMethod: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] } } });
    const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer('signer').setSubject('signer').setAudience('https://localhost/oauth/token').setExpirationTime('1m').setJti(randomUUID()).sign(privateKey);
    keep(assertion);
    const assertionForm = { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
    const signed = (await form('/oauth/token', assertionForm)).json<{ access_token: string }>().access_token;
    keep(signed);
    await form('/oauth/token', assertionForm);

    await id.gw.runtime.identity!.audit.flush();
    await id.gw.logs.waitFor((l) => typeof l.path === 'string' && l.path === '/oauth/token' && l.status === 401);
    expect(secrets).toHaveLength(7);
    const audit = await assertNotLogged(id, secrets);
    for (const type of ['authn_token_created', 'authn_token_revoked', 'authn_login_fail', 'client_created']) expect(audit).toContain(`"${type}"`);
  });
});
