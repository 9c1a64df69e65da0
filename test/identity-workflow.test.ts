import { afterEach, describe, expect, it } from 'vitest';
import { assertNoSecrets, postgresAvailable, startIdentityGateway, type IdentityGateway, type Reply } from './helpers/identity.js';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';

const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup(backend: 'sqlite' | 'postgres', identity: Record<string, unknown> = {}): Promise<{ id: IdentityGateway; upstream: TestUpstream }> {
  const upstream = await startUpstream();
  open.push(upstream);
  const id = await startIdentityGateway({
    backend,
    identity,
    upstreams: { notes: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { jwt: { identity: true } } }],
  });
  open.push(id);
  return { id, upstream };
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
