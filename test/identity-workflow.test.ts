import { afterEach, describe, expect, it } from 'vitest';
import { assertNoSecrets, postgresAvailable, startNotesBehindIdentity, type IdentityGateway, type Reply } from './helpers/identity.js';
import type { TestUpstream } from './helpers/gateway.js';

const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup(backend: 'sqlite' | 'postgres', identity: Record<string, unknown> = {}): Promise<{ id: IdentityGateway; upstream: TestUpstream }> {
  const notes = await startNotesBehindIdentity({ backend, identity });
  open.push(notes);
  return notes;
}

const checked = (r: Reply) => (assertNoSecrets(r), r);

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`the secure login workflow on ${backend}`, () => {
    it('register → login → call → refresh → reuse revokes the family → login → logout → the token is refused at the gateway', async () => {
      const { id, upstream } = await setup(backend);
      const email = 'ada@example.com';
      const password = 'correct horse battery staple 42';
      const reg = checked(await id.call('POST', '/api/v1/auth/register', { json: { email, password } }));
      expect(reg.status).toBe(202);
      expect(reg.headers['cache-control']).toBe('no-store');

      const login = checked(await id.call('POST', '/api/v1/auth/login', { json: { email, password } }));
      expect(login.status).toBe(200);
      expect(login.headers['cache-control']).toBe('no-store');
      const t1 = login.json<{ access_token: string; refresh_token: string; token_type: string; expires_in: number; scope: string }>();
      expect(t1.token_type).toBe('Bearer');
      expect(t1.expires_in).toBe(600);
      expect(t1.scope).toBe('notes:read notes:write');
      const [header] = t1.access_token.split('.');
      expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });

      const call1 = await id.call('GET', '/api/notes/1', { token: t1.access_token });
      expect(call1.status).toBe(200);
      expect(upstream.requests).toHaveLength(1);
      expect(upstream.requests[0]!.headers.authorization).toBeUndefined();

      const refreshed = checked(await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: t1.refresh_token } }));
      expect(refreshed.status).toBe(200);
      const t2 = refreshed.json<{ access_token: string; refresh_token: string }>();
      expect(t2.refresh_token).not.toBe(t1.refresh_token);
      expect((await id.call('GET', '/api/notes/2', { token: t2.access_token })).status).toBe(200);

      // The spent refresh token again: reuse. The family dies, successor and access tokens included.
      const reuse = await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: t1.refresh_token } });
      expect(reuse.status).toBe(401);
      expect(reuse.json().code).toBe('RMP_REFRESH_TOKEN_INVALID');
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: t2.refresh_token } })).json().code).toBe('RMP_REFRESH_TOKEN_INVALID');
      const before = upstream.requests.length;
      const dead = await id.call('GET', '/api/notes/3', { token: t2.access_token });
      expect(dead.status).toBe(401);
      expect(dead.json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
      expect(dead.headers['www-authenticate']).toContain('Bearer');
      expect((await id.call('GET', '/api/notes/3', { token: t1.access_token })).status).toBe(401);
      expect(upstream.requests.length).toBe(before);

      const again = checked(await id.call('POST', '/api/v1/auth/login', { json: { email, password } }));
      const t3 = again.json<{ access_token: string; refresh_token: string }>();
      expect((await id.call('GET', '/api/notes/4', { token: t3.access_token })).status).toBe(200);
      const logout = await id.call('POST', '/api/v1/auth/logout', { token: t3.access_token });
      expect(logout.status).toBe(204);
      const refused = await id.call('GET', '/api/notes/5', { token: t3.access_token });
      expect(refused.status).toBe(401);
      expect(refused.json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: t3.refresh_token } })).status).toBe(401);
      expect(upstream.requests.length).toBe(before + 1);

      // The audit trail recorded the reuse, with ids, never the e-mail.
      await id.gw.runtime.identity!.audit.flush();
      const rows = await id.gw.runtime.identity!.storage.db.selectFrom('audit_events').selectAll().execute();
      expect(rows.map((r) => r.type)).toEqual(expect.arrayContaining(['user_created', 'authn_login_success', 'authn_token_created', 'authn_token_reuse', 'authn_token_revoked']));
      expect(JSON.stringify(rows)).not.toContain(email);
    });
  });
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`the audit trail on ${backend}`, () => {
    it('GET /api/v1/audit filters by type, actor and subject, pages with a cursor, and holds ids, never e-mails or tokens', async () => {
      const { id } = await setup(backend);
      const service = id.gw.runtime.identity!.service;
      const admin = await service.bootstrapAdmin('auditor@example.com');
      const change = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'auditor@example.com', password: admin.oneTimePassword } })).json<{ passwordChangeToken: string }>();
      const adminToken = (await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: change.passwordChangeToken, newPassword: 'the chief passphrase 2' } })).json<{ access_token: string }>().access_token;
      const password = 'a long enough passphrase 7';
      await id.call('POST', '/api/v1/auth/register', { json: { email: 'subject@example.com', password } });
      for (let i = 0; i < 3; i++) await id.call('POST', '/api/v1/auth/login', { json: { email: 'subject@example.com', password: `wrong password ${i}` } });
      const user = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'subject@example.com', password } })).json<{ access_token: string; refresh_token: string }>();
      const me = (await id.call('GET', '/api/v1/users/me', { token: user.access_token })).json<{ id: string }>();

      const fails = await id.call('GET', `/api/v1/audit?type=authn_login_fail&subject=${me.id}`, { token: adminToken });
      expect(fails.status).toBe(200);
      const items = fails.json<{ items: { type: string; subject: string; actor: string; clientIp: string; requestId: string; time: string }[] }>().items;
      expect(items).toHaveLength(3);
      // Whoever failed is unknown: the account is the subject, never the actor.
      for (const item of items) expect(item).toMatchObject({ type: 'authn_login_fail', subject: me.id, actor: null, clientIp: '127.0.0.1', requestId: expect.any(String) });

      const seen = new Set<number>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Reply = await id.call('GET', `/api/v1/audit?limit=2&subject=${me.id}${cursor === null ? '' : `&cursor=${cursor}`}`, { token: adminToken });
        expect(page.status).toBe(200);
        const body = page.json<{ items: { id: number; subject: string }[]; nextCursor: string | null }>();
        for (const item of body.items) {
          expect(item.subject).toBe(me.id);
          expect(seen.has(item.id)).toBe(false);
          seen.add(item.id);
        }
        cursor = body.nextCursor;
        pages++;
      } while (cursor !== null && pages < 20);
      expect(seen.size).toBeGreaterThanOrEqual(6);
      expect(pages).toBeGreaterThanOrEqual(3);

      const everything = await id.call('GET', '/api/v1/audit?limit=100', { token: adminToken });
      expect(everything.text).not.toContain('subject@example.com');
      expect(everything.text).not.toContain('auditor@example.com');
      expect(everything.text).not.toContain(user.refresh_token);
      expect(everything.text).not.toContain(user.access_token.split('.')[2]);
      const bad = await id.call('GET', '/api/v1/audit?type=DROP%20TABLE', { token: adminToken });
      expect([bad.status, bad.json().code]).toEqual([400, 'RMP_VALIDATION_FAILED']);
      expect((await id.call('GET', '/api/v1/audit', { token: user.access_token })).status).toBe(403);
    });
  });
}
