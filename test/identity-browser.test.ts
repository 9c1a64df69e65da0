import { afterEach, describe, expect, it } from 'vitest';
import { postgresAvailable, startNotesBehindIdentity } from './helpers/identity.js';

/**
 * Browser mode (identity.browser.refreshCookie): the refresh token lives in a __Host- cookie out of
 * reach of scripts; refreshing with it needs CSRF proof; upstreams never see the cookies.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

function cookiesOf(setCookie: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of Array.isArray(setCookie) ? setCookie : setCookie === undefined ? [] : [setCookie]) {
    const [pair] = line.split(';');
    const eq = pair!.indexOf('=');
    out[pair!.slice(0, eq)] = pair!.slice(eq + 1);
  }
  return out;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`browser mode on ${backend}`, () => {
    it('keeps the refresh token in a __Host- cookie, demands CSRF proof to use it, and never forwards it', async () => {
      const notes = await startNotesBehindIdentity({ backend, identity: { browser: { refreshCookie: true, origins: ['https://app.example.com'] } } });
      open.push(notes);
      const { id, upstream } = notes;
      const credentials = { email: 'web@example.com', password: 'a long enough passphrase 7' };
      await id.call('POST', '/api/v1/auth/register', { json: credentials });
      const login = await id.call('POST', '/api/v1/auth/login', { json: credentials });
      expect(login.status).toBe(200);
      const body = login.json<{ access_token: string; refresh_token?: string; csrf_token: string }>();
      expect(body.refresh_token).toBeUndefined();
      const setCookie = login.headers['set-cookie'] as string[];
      const refreshLine = setCookie.find((c) => c.startsWith('__Host-rampart-refresh='))!;
      expect(refreshLine).toMatch(/; Path=\//);
      expect(refreshLine).toMatch(/; HttpOnly/);
      expect(refreshLine).toMatch(/; Secure/);
      expect(refreshLine).toMatch(/; SameSite=Strict/);
      expect(refreshLine).not.toMatch(/Domain=/i);
      const csrfLine = setCookie.find((c) => c.startsWith('__Host-rampart-csrf='))!;
      expect(csrfLine).not.toMatch(/HttpOnly/);
      const jar = cookiesOf(setCookie);
      expect(jar['__Host-rampart-csrf']).toBe(body.csrf_token);
      const cookie = `theme=dark; __Host-rampart-refresh=${jar['__Host-rampart-refresh']}; __Host-rampart-csrf=${jar['__Host-rampart-csrf']}`;

      // Upstreams never see the gateway's cookies; the others pass.
      await id.call('GET', '/api/notes/1', { token: body.access_token, headers: { cookie } });
      expect(upstream.requests.at(-1)!.headers.cookie).toBe('theme=dark');

      // No CSRF header, a wrong one, or a foreign Origin: refused, and the token is not spent.
      const attempts: Record<string, string>[] = [{ cookie }, { cookie, 'x-csrf-token': 'forged-value-forged-value' }, { cookie, 'x-csrf-token': body.csrf_token, origin: 'https://evil.example' }];
      for (const headers of attempts) {
        const r = await id.call('POST', '/api/v1/auth/refresh', { headers });
        expect([r.status, r.json().code]).toEqual([403, 'RMP_CSRF_FAILED']);
      }
      const ok = await id.call('POST', '/api/v1/auth/refresh', { headers: { cookie, 'x-csrf-token': body.csrf_token, origin: 'https://app.example.com' } });
      expect(ok.status).toBe(200);
      const next = cookiesOf(ok.headers['set-cookie']);
      expect(next['__Host-rampart-refresh']).not.toBe(jar['__Host-rampart-refresh']);
      expect(ok.json().refresh_token).toBeUndefined();

      // Logout clears both cookies and ends the session.
      const out = await id.call('POST', '/api/v1/auth/logout', { token: ok.json<{ access_token: string }>().access_token, headers: { cookie: `__Host-rampart-refresh=${next['__Host-rampart-refresh']}` } });
      expect(out.status).toBe(204);
      const cleared = out.headers['set-cookie'] as string[];
      expect(cleared.every((c) => /Max-Age=0/.test(c))).toBe(true);
      const after = await id.call('POST', '/api/v1/auth/refresh', { headers: { cookie: `__Host-rampart-refresh=${next['__Host-rampart-refresh']}; __Host-rampart-csrf=x1234567`, 'x-csrf-token': 'x1234567' } });
      expect([after.status, after.json().code]).toEqual([401, 'RMP_REFRESH_TOKEN_INVALID']);
    });
  });
}
