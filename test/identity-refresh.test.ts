import { afterEach, describe, expect, it } from 'vitest';
import { postgresAvailable, startIdentityGateway, type IdentityGateway } from './helpers/identity.js';

/**
 * Refresh rotation under concurrency, on both backends: 20 uses of one refresh token at once.
 * Strict (default): exactly one gets a successor, the rest are reuse and revoke the family,
 * successor included. With a grace window: every concurrent use gets the same successor.
 */

const pgUp = await postgresAvailable();
const open: IdentityGateway[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function loggedIn(backend: 'sqlite' | 'postgres', identity: Record<string, unknown> = {}) {
  const id = await startIdentityGateway({ backend, identity });
  open.push(id);
  const credentials = { email: 'race@example.com', password: 'a long enough passphrase 7' };
  expect((await id.call('POST', '/api/v1/auth/register', { json: credentials })).status).toBe(202);
  const login = await id.call('POST', '/api/v1/auth/login', { json: credentials });
  expect(login.status).toBe(200);
  return { id, tokens: login.json<{ access_token: string; refresh_token: string }>() };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`refresh rotation on ${backend}`, () => {
    it('strict: of 20 concurrent refreshes exactly one wins, the others are reuse, and the family ends revoked, successor included', async () => {
      const { id, tokens } = await loggedIn(backend);
      const replies = await Promise.all(Array.from({ length: 20 }, () => id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: tokens.refresh_token } })));
      const won = replies.filter((r) => r.status === 200);
      const lost = replies.filter((r) => r.status === 401);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(19);
      for (const r of lost) expect(r.json().code).toBe('RMP_REFRESH_TOKEN_INVALID');
      const successor = won[0]!.json<{ access_token: string; refresh_token: string }>();
      // The family is revoked: the successor cannot refresh, and its access token is refused.
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: successor.refresh_token } })).status).toBe(401);
      const logout = await id.call('POST', '/api/v1/auth/logout', { token: successor.access_token });
      expect(logout.status).toBe(401);
      expect(logout.json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
      const family = await id.gw.runtime.identity!.storage.db.selectFrom('refresh_families').select(['revoked_at', 'revoked_reason']).execute();
      expect(family).toHaveLength(1);
      expect(family[0]!.revoked_reason).toBe('reuse');
      await id.gw.runtime.identity!.audit.flush();
      const reuse = await id.gw.runtime.identity!.storage.db.selectFrom('audit_events').select('level').where('type', '=', 'authn_token_reuse').execute();
      expect(reuse.length).toBeGreaterThanOrEqual(1);
      expect(reuse[0]!.level).toBe('CRITICAL');
    });

    it('grace window: 20 concurrent refreshes all get the same successor, which then works once', async () => {
      const { id, tokens } = await loggedIn(backend, { tokens: { reuseGrace: '10s' } });
      const replies = await Promise.all(Array.from({ length: 20 }, () => id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: tokens.refresh_token } })));
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
      const successors = new Set(replies.map((r) => r.json<{ refresh_token: string }>().refresh_token));
      expect(successors.size).toBe(1);
      const [successor] = [...successors];
      const next = await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: successor } });
      expect(next.status).toBe(200);
      // The original token, once its successor has itself been used, is reuse even within the window.
      const stale = await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: tokens.refresh_token } });
      expect(stale.status).toBe(401);
      const family = await id.gw.runtime.identity!.storage.db.selectFrom('refresh_families').select('revoked_reason').execute();
      expect(family[0]!.revoked_reason).toBe('reuse');
    });
  });
}
