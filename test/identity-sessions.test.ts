import { afterEach, describe, expect, it } from 'vitest';
import { assertNoSecrets, postgresAvailable, startIdentityGateway, type IdentityGateway } from './helpers/identity.js';

/** A user's sessions (issue 7, item 6): listed with device and address, ended one by one or all, by the owner or an admin. */
const pgUp = await postgresAvailable();
const open: IdentityGateway[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

const PASSWORD = 'a long enough passphrase 7';

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`sessions on ${backend}`, () => {
    it('lists the live sessions, ends one or all, and keeps them to their owner and admins', async () => {
      const id = await startIdentityGateway({ backend });
      open.push(id);
      const service = id.gw.runtime.identity!.service;
      const boss = await service.bootstrapAdmin('boss@example.com');
      const bossChange = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'boss@example.com', password: boss.oneTimePassword } })).json<{ passwordChangeToken: string }>();
      const admin = (await id.call('POST', '/api/v1/auth/password', { json: { passwordChangeToken: bossChange.passwordChangeToken, newPassword: 'the chief passphrase 2' } })).json<{ access_token: string }>().access_token;
      for (const email of ['ada@example.com', 'bob@example.com']) await id.call('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } });
      const login = (email: string, agent: string) => id.call('POST', '/api/v1/auth/login', { json: { email, password: PASSWORD }, headers: { 'user-agent': agent } }).then((r) => r.json<{ access_token: string; refresh_token: string }>());
      const laptop = await login('ada@example.com', 'Laptop/1.0');
      const phone = await login('ada@example.com', 'Phone/2.0');
      const bob = await login('bob@example.com', 'Bob/1.0');
      const ada = (await id.call('GET', '/api/v1/users/me', { token: laptop.access_token })).json<{ id: string }>().id;

      const listed = await id.call('GET', '/api/v1/users/me/sessions', { token: laptop.access_token });
      expect(listed.status).toBe(200);
      expect(listed.headers['cache-control']).toBe('no-store');
      assertNoSecrets(listed);
      const items = listed.json<{ items: { id: string; current: boolean; ip: string; userAgent: string; createdAt: string; lastUsedAt: string; expiresAt: string }[] }>().items;
      expect(items).toHaveLength(2);
      expect(items.map((i) => i.userAgent).sort()).toEqual(['Laptop/1.0', 'Phone/2.0']);
      expect(items.find((i) => i.current)?.userAgent).toBe('Laptop/1.0');
      for (const item of items) expect(item.ip).toBe('127.0.0.1');
      expect(listed.text).not.toContain(laptop.refresh_token);
      const phoneSession = items.find((i) => i.userAgent === 'Phone/2.0')!.id;

      // Someone else's sessions are 404, listed or ended; an admin sees them.
      expect((await id.call('GET', `/api/v1/users/${ada}/sessions`, { token: bob.access_token })).status).toBe(404);
      expect((await id.call('DELETE', `/api/v1/users/${ada}/sessions/${phoneSession}`, { token: bob.access_token })).status).toBe(404);
      expect((await id.call('DELETE', `/api/v1/users/me/sessions/${phoneSession}`, { token: bob.access_token })).status).toBe(404);
      expect((await id.call('GET', `/api/v1/users/${ada}/sessions`, { token: admin })).json<{ items: unknown[] }>().items).toHaveLength(2);

      // The owner ends the phone's session: its tokens die, the laptop's live on.
      expect((await id.call('DELETE', `/api/v1/users/me/sessions/${phoneSession}`, { token: laptop.access_token })).status).toBe(204);
      const phoneMe = await id.call('GET', '/api/v1/users/me', { token: phone.access_token });
      expect([phoneMe.status, phoneMe.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: phone.refresh_token } })).status).toBe(401);
      expect((await id.call('GET', '/api/v1/users/me', { token: laptop.access_token })).status).toBe(200);
      expect((await id.call('DELETE', `/api/v1/users/me/sessions/${phoneSession}`, { token: laptop.access_token })).status).toBe(404);

      // An admin ends all of Ada's sessions.
      expect((await id.call('DELETE', `/api/v1/users/${ada}/sessions`, { token: bob.access_token })).status).toBe(404);
      expect((await id.call('DELETE', `/api/v1/users/${ada}/sessions`, { token: admin })).status).toBe(204);
      expect((await id.call('GET', '/api/v1/users/me', { token: laptop.access_token })).status).toBe(401);
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: laptop.refresh_token } })).status).toBe(401);
      expect((await id.call('GET', '/api/v1/users/me', { token: bob.access_token })).status).toBe(200);
      await id.gw.runtime.identity!.audit.flush();
      const ended = await service.db.selectFrom('audit_events').select(['actor', 'subject', 'description']).where('type', '=', 'authn_token_revoked').execute();
      expect(ended).toContainEqual({ actor: ada, subject: ada, description: 'session ended' });
      expect(ended.some((e) => e.subject === ada && e.actor !== ada)).toBe(true);
    });
  });
}
