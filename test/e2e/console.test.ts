import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserTestsRun, launchBrowser, type Browser } from '../helpers/browser.js';
import { SESSION_COOKIE } from '../../src/admin/auth.js';
import { CONSOLE_DIR, CONSOLE_HEADERS } from '../../src/admin/console.js';
import { send } from '../helpers/http.js';
import { startGateway, startUpstream, type TestUpstream } from '../helpers/gateway.js';
import { startIdentityGateway, userToken, type IdentityGateway } from '../helpers/identity.js';

/**
 * The console in a real browser (Debian's Chromium, driven by playwright-core; never a downloaded
 * browser) against a real gateway: identity on SQLite, the admin listener, a protected route and
 * a rate-limited one in front of a real upstream. One walk through the console, step by step.
 */
const runs = browserTestsRun("the console's browser test");

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');
const ADMIN = { email: 'boss@example.com', password: 'the chief passphrase 2' };
/** Generous: a busy two-core CI machine. The page answers in far less. */
const WAIT = 15_000;
/**
 * `RAMPART_CONSOLE_SCREENSHOT=1` runs 45 s of traffic before the overview's picture and writes it
 * to docs/images/console-overview.png as well (the README's picture).
 */
const README_SHOT = process.env.RAMPART_CONSOLE_SCREENSHOT === '1';

describe.skipIf(!runs)('admin console in Chromium', () => {
  let upstream: TestUpstream;
  let hooks: TestUpstream;
  let id: IdentityGateway;
  let admin: string;
  let context: BrowserContext;
  let page: Page;
  let browser: Browser | undefined;
  let user: { token: string; id: string };
  let oneTimePassword: string;
  let problems: string[] = [];

  const gateway = (path: string, headers: Record<string, string> = {}) => id.call('GET', path, { headers });

  beforeAll(async () => {
    // The build is what is served: make it if this checkout has none (npm ci builds it).
    if (!existsSync(join(CONSOLE_DIR, 'index.html'))) {
      const { build } = await import('vite');
      await build({ configFile: join(ROOT, 'console', 'vite.config.ts'), logLevel: 'warn' });
    }
    upstream = await startUpstream();
    hooks = await startUpstream((_req, res) => res.writeHead(204).end());
    id = await startIdentityGateway({
      backend: 'sqlite',
      admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
      // The admin gives keys at most its own scopes, as in the quickstart.
      identity: { scopes: { user: ['notes:read', 'notes:write'], admin: ['notes:read', 'notes:write'] } },
      upstreams: { notes: { targets: [{ url: upstream.url }] } },
      // A rule that fires at the first 429, notifying the log and a webhook on this machine.
      alerts: {
        webhooks: { ops: { url: `${hooks.url}/alerts`, secret: 'a webhook secret of at least 32 chars', retries: 0 } },
        rules: [{ name: 'rate-limited', description: 'A client went over a rate limit.', kind: 'event', event: 'excess_rate_limit_exceeded', groupBy: 'clientIp', threshold: 0, window: '1m', notify: ['log', 'ops'] }],
      },
      routes: [
        {
          name: 'notes',
          match: { path: '/api/notes/*' },
          upstream: 'notes',
          policies: { jwt: { identity: true }, 'api-key': { identity: true }, authorize: { scopes: { all: ['notes:read'] } } },
        },
        { name: 'search', match: { path: '/api/search' }, upstream: 'notes', public: true, policies: { 'rate-limit': { limits: [{ name: 'tight', key: ['ip'], limit: 3, window: '1m' }] } } },
      ],
    });
    admin = id.gw.runtime.adminUrl!;
    oneTimePassword = (await id.gw.runtime.identity!.service.bootstrapAdmin(ADMIN.email)).oneTimePassword;
    user = await userToken(id, 'ada@example.com');

    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchBrowser({ width: 1366, height: 768 }, WAIT);
    ({ context, page, problems } = browser);
  });

  afterAll(async () => {
    await browser?.close();
    await id?.close();
    await upstream?.close();
    await hooks?.close();
  });

  /** Requests to the gateway while the console watches: passes, 401s without a token, 429s past the tight limit. */
  const traffic = async (rounds: number) => {
    for (let i = 0; i < rounds; i++) {
      const burst = [];
      // A wave: from 2 to 10 requests a round.
      for (let j = 0; j < 6 + Math.round(4 * Math.sin(i / 5)); j++) burst.push(gateway(`/api/notes/${j}`, { authorization: `Bearer ${user.token}` }));
      if (i % 2 === 0) burst.push(gateway('/api/notes/1'));
      if (i % 3 === 0) burst.push(gateway('/api/search'));
      await Promise.all(burst);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  it('serves the console under a strict CSP, and logs an admin in with a session cookie that is HttpOnly, Secure and SameSite=Strict', async () => {
    const index = await send(admin, '/');
    expect(index.status).toBe(200);
    for (const [name, value] of Object.entries(CONSOLE_HEADERS)) expect(index.headers[name]).toBe(value);
    expect(index.text).not.toMatch(/<script>|<style|style=/i);

    await page.goto(`${admin}/`);
    await page.getByTestId('login-email').fill(ADMIN.email);
    await page.getByTestId('login-password').fill('not the passphrase');
    await page.getByTestId('login-submit').click();
    await expect.poll(() => page.getByTestId('login-error').textContent(), { timeout: WAIT }).toBeTruthy();
    await page.screenshot({ path: join(ARTIFACTS, 'login.png') });

    // The first admin's one-time password (as `rampart users create --admin` prints it) asks for
    // a new password, then opens the session.
    await page.getByTestId('login-password').fill(oneTimePassword);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('login-new-password').fill(ADMIN.password);
    await page.getByTestId('login-repeat-password').fill(ADMIN.password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('page-overview').waitFor();
    expect(await page.getByTestId('session-user').textContent()).toBe(ADMIN.email);
    // The browser logs the refused login (401) and the password-change answer (403) as failed loads.
    await expect.poll(() => problems.length, { timeout: WAIT }).toBe(2);
    const failed = problems.splice(0);
    expect(failed.map((p) => p.match(/status of (\d+)/)?.[1])).toEqual(['401', '403']);

    const cookies = await context.cookies(admin);
    const session = cookies.find((c) => c.name === SESSION_COOKIE);
    expect(session).toBeDefined();
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    // Out of reach of scripts.
    expect(await page.evaluate('document.cookie')).not.toContain(SESSION_COOKIE);
  });

  it('shows live traffic and denials on the overview within seconds', async () => {
    await page.getByTestId('live-state').filter({ hasText: 'Live' }).waitFor();
    await page.getByTestId('window-60').click();
    await traffic(README_SHOT ? 110 : 12);
    const number = async (testid: string) => Number(((await page.getByTestId(testid).textContent()) ?? '').replace(/[^0-9.]/g, ''));
    await expect.poll(() => number('stat-requests'), { timeout: WAIT }).toBeGreaterThanOrEqual(60);
    await expect.poll(() => number('stat-denials'), { timeout: WAIT }).toBeGreaterThanOrEqual(7);
    await expect.poll(() => page.getByTestId('denials-by-code').textContent(), { timeout: WAIT }).toContain('RMP_AUTH_REQUIRED');
    await expect.poll(() => page.getByTestId('denials-by-code').textContent(), { timeout: WAIT }).toContain('RMP_RATE_LIMITED');
    await expect.poll(() => page.getByTestId('top-denied-clients').textContent(), { timeout: WAIT }).toContain('127.0.0.1');
    expect(await page.getByTestId('status-4xx').textContent()).not.toMatch(/ 0$/);
    // Both charts are drawn (uPlot renders into a canvas).
    expect(await page.locator('[data-testid=chart-traffic] canvas').count()).toBe(1);
    expect(await page.locator('[data-testid=chart-latency] canvas').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'overview.png') });
    if (README_SHOT) {
      // The whole page, in a window as tall as it (the left nav is as tall as the window).
      await page.setViewportSize({ width: 1366, height: await page.evaluate<number>('document.documentElement.scrollHeight') });
      await page.screenshot({ path: join(ROOT, 'docs', 'images', 'console-overview.png') });
      await page.setViewportSize({ width: 1366, height: 768 });
    }
  }, README_SHOT ? 120_000 : undefined);

  it('lists the denials as security events, adds new ones live, filters them and opens one', async () => {
    await page.getByTestId('nav-events').click();
    const rows = page.getByTestId('event-row');
    await rows.filter({ has: page.locator('td', { hasText: 'authn_token_invalid' }) }).first().waitFor();
    await rows.filter({ has: page.locator('td', { hasText: 'excess_rate_limit_exceeded' }) }).first().waitFor();

    // A new denial appears without a reload.
    const before = await rows.count();
    await gateway('/api/notes/live', { authorization: 'Bearer not-a-token' });
    await expect.poll(() => rows.count(), { timeout: WAIT }).toBeGreaterThan(before);

    // More than a page (50): "Older events" follows nextCursor, with no event twice.
    await Promise.all(Array.from({ length: 55 }, (_, i) => gateway(`/api/notes/page-${i}`)));
    await page.getByTestId('filter-apply').click();
    await page.getByTestId('events-older').waitFor();
    await expect.poll(() => rows.count(), { timeout: WAIT }).toBeGreaterThanOrEqual(50);
    const firstPage = await rows.count();
    await page.getByTestId('events-older').click();
    await expect.poll(() => rows.count(), { timeout: WAIT }).toBeGreaterThan(firstPage);
    const ids = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')));
    expect(new Set(ids).size).toBe(ids.length);

    await page.getByTestId('filter-type').fill('excess_');
    await page.getByTestId('filter-apply').click();
    await expect.poll(async () => [...new Set(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-type'))))], { timeout: WAIT }).toEqual(['excess_rate_limit_exceeded']);
    await page.screenshot({ path: join(ARTIFACTS, 'events.png') });

    await rows.first().getByTestId('event-link').click();
    await page.getByTestId('event-detail').waitFor();
    expect(await page.getByTestId('event-field-type').textContent()).toMatch(/^excess_rate_limit_exceeded /);
    expect(await page.getByTestId('event-field-route').textContent()).toMatch(/^search /);
    const data = JSON.parse((await page.getByTestId('event-data').textContent())!);
    expect(data).toMatchObject({ problem: 'RMP_RATE_LIMITED', status: 429 });
    await page.screenshot({ path: join(ARTIFACTS, 'event.png') });
    await page.getByTestId('event-back').click();
    await page.getByTestId('events-table').waitFor();
  });

  it('shows each route with its policies and protection summary', async () => {
    await page.getByTestId('nav-routes').click();
    const notes = page.locator('[data-testid=route-card][data-route=notes]');
    await notes.waitFor();
    expect(await notes.getByTestId('protection-authentication').getAttribute('data-on')).toBe('true');
    expect(await notes.getByTestId('route-policies').textContent()).toContain('jwt');
    const search = page.locator('[data-testid=route-card][data-route=search]');
    expect(await search.getByTestId('protection-authentication').getAttribute('data-on')).toBe('false');
    await page.screenshot({ path: join(ARTIFACTS, 'routes.png') });
  });

  it('creates an API key whose secret is shown once and works at the gateway, then revokes it', async () => {
    await page.getByTestId('nav-keys').click();
    await page.locator('[data-testid=user-row]', { hasText: 'ada@example.com' }).waitFor();
    await page.getByTestId('create-key-owner').selectOption({ label: 'ada@example.com' });
    await page.getByTestId('create-key-name').fill('reporting job');
    await page.getByTestId('create-key-scopes').fill('notes:read');
    await page.getByTestId('create-key-expiry').selectOption('30d');
    await page.getByTestId('create-key-submit').click();

    const dialog = page.getByTestId('secret-dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('will not be shown again');
    const secret = (await page.getByTestId('secret-value').textContent())!.trim();
    expect(secret.length).toBeGreaterThan(20);
    await page.screenshot({ path: join(ARTIFACTS, 'keys.png') });
    await page.getByTestId('secret-close').click();
    await dialog.waitFor({ state: 'detached' });
    // Nowhere on the page any more: not in the text, the markup or a form field.
    const everywhere = await page.evaluate<string>("document.documentElement.outerHTML + document.body.innerText + [...document.querySelectorAll('input')].map((i) => i.value).join(' ')");
    expect(everywhere).not.toContain(secret);

    const row = page.locator('[data-testid=key-row][data-key-name="reporting job"]');
    await row.waitFor();
    const ok = await gateway('/api/notes/7', { 'x-api-key': secret });
    expect(ok.status).toBe(200);
    expect(upstream.requests.at(-1)!.url).toBe('/api/notes/7');

    await row.getByTestId('key-revoke').click();
    await page.getByTestId('revoke-dialog').waitFor();
    await page.getByTestId('revoke-confirm').click();
    await row.getByTestId('key-revoked').waitFor();
    const refused = await gateway('/api/notes/7', { 'x-api-key': secret });
    expect(refused.status).toBe(401);
  });

  it('shows alert rules with their state, and the history with notification outcomes', async () => {
    await page.getByTestId('nav-alerts').click();
    await page.locator('[data-testid=alert-rule]', { hasText: 'credential-stuffing' }).waitFor();
    await page.locator('[data-testid=alert-rule][data-firing=true]', { hasText: 'rate-limited' }).waitFor();
    const fired = page.locator('[data-testid=alert-fired]', { hasText: 'rate-limited' }).first();
    await fired.waitFor();
    await expect.poll(() => fired.getByTestId('alert-notifications').textContent(), { timeout: WAIT }).toContain('ops: sent');
    expect(await fired.getByTestId('alert-notifications').textContent()).toContain('log: sent');
    expect(hooks.requests.some((r) => r.url === '/alerts')).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'alerts.png') });
  });

  it('logs out: back to the login page, and the session cookie no longer works', async () => {
    const cookie = (await context.cookies(admin)).find((c) => c.name === SESSION_COOKIE)!;
    const asSession = { cookie: `${SESSION_COOKIE}=${cookie.value}` };
    expect((await send(admin, '/api/session', { headers: asSession })).status).toBe(200);
    await page.getByTestId('logout').click();
    await page.getByTestId('login-form').waitFor();
    expect((await context.cookies(admin)).some((c) => c.name === SESSION_COOKIE && c.value !== '')).toBe(false);
    const after = await send(admin, '/api/session', { headers: asSession });
    expect(after.status).toBe(401);
    expect(after.json()).toMatchObject({ code: 'RMP_ADMIN_AUTH_INVALID' });
  });

  it('on a gateway without identity: logs in with the admin token and shows the consumers page empty', async () => {
    const token = randomBytes(32).toString('base64url');
    const bare = await startGateway({ admin: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, token }, routes: [] });
    try {
      const url = bare.runtime.adminUrl!;
      await page.goto(`${url}/`);
      await page.getByTestId('login-use-token').click();
      await page.getByTestId('login-token').fill(token);
      await page.getByTestId('login-submit').click();
      await page.getByTestId('page-overview').waitFor();
      expect(await page.getByTestId('session-user').textContent()).toBe('admin token');
      await page.getByTestId('nav-keys').click();
      await page.getByTestId('identity-disabled').waitFor();
      // The users and keys answers (404 RMP_ADMIN_IDENTITY_DISABLED) are logged by the browser as failed loads.
      await expect.poll(() => problems.length, { timeout: WAIT }).toBe(2);
      const failed = problems.splice(0);
      expect(failed.every((p) => /status of 404 .*\/api\/(users|apikeys)/.test(p))).toBe(true);
      await page.getByTestId('logout').click();
      await page.getByTestId('login-form').waitFor();
    } finally {
      // The browser goes first: a socket Chromium opened ahead of need is not idle to the server,
      // and the admin listener's close would wait for it (until the drain timeout).
      await context.close();
      await bare.close();
    }
  });

  it('logged no console error or warning and no CSP violation on the way', () => {
    expect(problems).toEqual([]);
  });
});
