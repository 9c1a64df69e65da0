import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium (never downloaded), driven by playwright-core, for the browser tests. Without
 * it those tests skip with a visible message — unless RAMPART_REQUIRE_SERVICES=1 (CI), where they
 * run and fail.
 */
export const CHROMIUM = '/usr/bin/chromium';
const required = process.env.RAMPART_REQUIRE_SERVICES === '1';
/** Whether a browser test file runs; warns once, naming the test, when it skips. */
export function browserTestsRun(what: string): boolean {
  const have = existsSync(CHROMIUM);
  if (!have && !required) console.warn(`SKIPPED: ${CHROMIUM} is missing; ${what} skips (apt-get install chromium, or set RAMPART_REQUIRE_SERVICES=1 to fail instead)`);
  return have || required;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Console errors and warnings, page errors and CSP violations, as they happen. */
  problems: string[];
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile of its own, one page, and every console problem collected. */
export async function launchBrowser(viewport: { width: number; height: number }, timeoutMs: number): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'rampart-chromium-'));
  // A fresh profile (--user-data-dir): playwright passes it for a persistent context.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
    deviceScaleFactor: 1,
  });
  // CSP violations reach the console too, but a listener in the page names them for sure.
  // (Scripts for the page are strings: this project's TypeScript has no DOM types.)
  await context.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));" });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    problems,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
