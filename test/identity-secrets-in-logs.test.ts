import { afterEach, describe, expect, it } from 'vitest';
import { startNotesBehindIdentity } from './helpers/identity.js';

/**
 * Nothing secret reaches the logs: every password, token, one-time password and invitation this
 * run hands out or receives is searched for in every line the gateway logged (access log, events,
 * errors) — including from failures, where a careless error path would echo its input.
 */
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('secrets never logged', () => {
  it('no password, access or refresh token, one-time password, change token or invitation appears in any log line', async () => {
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

    expect(secrets.length).toBeGreaterThanOrEqual(14);
    const text = id.gw.logs.lines.map((l) => JSON.stringify(l)).join('\n');
    expect(id.gw.logs.lines.length).toBeGreaterThan(20);
    for (const secret of secrets) {
      expect(text.includes(secret), `a log line holds a secret (${secret.slice(0, 6)}…)`).toBe(false);
      // Tokens are long: no recognizable piece of one either (the JWT signature, the middle of an opaque token).
      if (secret.includes('.')) expect(text.includes(secret.split('.')[2]!)).toBe(false);
      else if (secret.length >= 40) expect(text.includes(secret.slice(10, 30))).toBe(false);
    }
    // The audit table neither.
    const audit = JSON.stringify(await service.db.selectFrom('audit_events').selectAll().execute());
    for (const secret of secrets) expect(audit.includes(secret)).toBe(false);
    expect(audit).not.toContain('ada@example.com');
  });
});
