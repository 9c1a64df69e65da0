import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserTestsRun, launchBrowser, type Browser } from '../helpers/browser.js';
import { main } from '../../src/cli/main.js';
import { fingerprintOf, toReport } from '../../src/scanner/report/baseline.js';
import { renderHtml } from '../../src/scanner/report/html.js';
import { CHECKS, type ScanResult } from '../../src/scanner/runner.js';
import { SEVERITIES, type Finding, type Severity } from '../../src/scanner/types.js';
import { startVulnerableApi, type VulnerableApi } from '../fixtures/vulnerable/index.js';

/**
 * The HTML report of `rampart scan` in a real browser (Debian's Chromium, driven by playwright-core,
 * as test/e2e/console.test.ts does): opened from the file, as a person would, it renders with no
 * console error, loads nothing else, and what the target chose to send stays inert text.
 */
const runs = browserTestsRun("the scan report's browser test");

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts', 'scan');
/** Generous: a busy two-core CI machine. The page renders in far less. */
const WAIT = 15_000;

/** A response excerpt that tries to end the <pre>, run a script and load an image. */
const HOSTILE = `HTTP/1.1 200\ncontent-type: text/html\n\n</pre></details><script>window.__pwned = 1</script><img src="http://127.0.0.1:9/x" onerror="window.__pwned = 2"> ' " & \u0000 done`;

function hostileResult(): ScanResult {
  const finding: Finding = {
    check: 'headers',
    id: 'headers.missing',
    title: 'Missing <b>headers</b> "quoted"',
    severity: 'high',
    confidence: 'high',
    owasp: 'API8:2023',
    location: { method: 'GET', url: 'http://127.0.0.1:1/a?q=%3Cscript%3E', host: '127.0.0.1:1' },
    evidence: { request: 'GET /a?q=<script>alert(1)</script> HTTP/1.1\nhost: 127.0.0.1:1', response: HOSTILE },
    detail: '<script>window.__pwned = 3</script>',
    remediation: '<a href="javascript:window.__pwned=4">fix</a>',
  };
  return {
    target: 'http://127.0.0.1:1/',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    findings: [finding],
    checks: CHECKS,
    stats: { requests: 3, discoveryRequests: 1, budget: 500, durationMs: 1000, endpoints: 1, incompleteChecks: [], skipped: [], bySeverity: { info: 0, low: 0, medium: 0, high: 1, critical: 0 } },
  };
}

describe.skipIf(!runs)('scan HTML report in Chromium', () => {
  let api: VulnerableApi;
  let dir: string;
  let browser: Browser | undefined;
  let page: Page;
  let problems: string[] = [];
  const requested: string[] = [];

  beforeAll(async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    dir = mkdtempSync(join(tmpdir(), 'rampart-scan-html-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchBrowser({ width: 1280, height: 900 }, WAIT);
    ({ page, problems } = browser);
    page.on('request', (r) => requested.push(r.url()));
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('renders a scan of the vulnerable fixture: summary, counts, findings by severity; the evidence opens', async () => {
    const err: string[] = [];
    const code = await main(['scan', api.url, '--rate', '1000', '--format', 'html,json', '--out', dir], { out: () => {}, err: (l) => err.push(l) });
    expect(code, err.join('\n')).toBe(1);
    const file = join(dir, 'rampart-scan.html');
    expect(readFileSync(file, 'utf8')).toMatch(/^<!doctype html>/);
    // The page must say what the JSON report of the same run says.
    const json = JSON.parse(readFileSync(join(dir, 'rampart-scan.json'), 'utf8')) as { findings: { id: string; severity: Severity }[] };
    const count = (s: Severity) => json.findings.filter((f) => f.severity === s).length;
    expect(json.findings.map((f) => f.id)).toEqual(expect.arrayContaining(['cors.reflected-origin', 'headers.missing']));

    requested.length = 0;
    await page.goto(pathToFileURL(file).href);
    expect(await page.getByRole('heading', { level: 1, name: 'Rampart scan report' }).isVisible()).toBe(true);
    expect(await page.getByRole('heading', { level: 2, name: 'Summary' }).isVisible()).toBe(true);
    for (const s of SEVERITIES) {
      expect(await page.locator(`table.counts tr.sev-${s} td.n`).textContent()).toBe(String(count(s)));
      expect(await page.getByRole('heading', { level: 2, name: `${s[0]!.toUpperCase()}${s.slice(1)} (${count(s)})` }).isVisible()).toBe(count(s) > 0);
    }
    expect(await page.locator('#total').textContent()).toBe(String(json.findings.length));
    expect(await page.locator('article.finding').count()).toBe(json.findings.length);
    const high = page.locator('#sev-high article.finding', { hasText: 'cors.reflected-origin' });
    expect(await high.locator('h3').textContent()).toMatch(/^high .*Origin/i);
    expect(await high.getByText('API8:2023 Security Misconfiguration').isVisible()).toBe(true);
    expect(await high.getByText(`GET ${api.url}`, { exact: false }).first().isVisible()).toBe(true);
    // The stylesheet applied (its CSP hash is right): severity colours.
    expect(await page.evaluate("getComputedStyle(document.querySelector('h2.sev-high')).color")).toBe('rgb(183, 28, 28)');
    expect(await page.evaluate("getComputedStyle(document.querySelector('#sev-high article.finding')).borderLeftColor")).toBe('rgb(183, 28, 28)');

    // The evidence is folded away until asked for.
    const response = high.locator('pre.response');
    expect(await response.isVisible()).toBe(false);
    await high.locator('summary').click();
    expect(await response.isVisible()).toBe(true);
    expect(await response.textContent()).toMatch(/^HTTP\/1\.1 \d{3}\n/);
    expect(await high.locator('details').getAttribute('open')).toBe('');
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });

    expect(requested).toEqual([pathToFileURL(file).href]); // the file only: nothing external
    expect(problems).toEqual([]);
  });

  it('leaves what the target sent inert: no script runs, no element is injected, the text reads as sent', async () => {
    const result = hostileResult();
    const file = join(dir, 'hostile.html');
    writeFileSync(file, renderHtml(toReport(result, { file: 'baseline.txt', fingerprints: [fingerprintOf(result.findings[0]!)] })));

    requested.length = 0;
    await page.goto(pathToFileURL(file).href);
    expect(await page.getByRole('heading', { level: 2, name: 'Accepted by the baseline (1)' }).isVisible()).toBe(true);
    expect(await page.getByText('No new findings.').isVisible()).toBe(true);
    const card = page.locator('#accepted article.finding');
    await card.locator('summary').click();
    expect(await card.locator('pre.response').textContent()).toBe(HOSTILE.replace('\u0000', '\u2400'));
    expect(await card.locator('pre.request').textContent()).toBe(result.findings[0]!.evidence.request);
    expect(await card.locator('h3').textContent()).toBe('high Missing <b>headers</b> "quoted"');
    expect(await card.locator('p.detail').textContent()).toBe('<script>window.__pwned = 3</script>');
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.evaluate("document.querySelectorAll('script, img, iframe, a, b, object, embed').length")).toBe(0);
    expect(await page.evaluate("document.querySelectorAll('pre').length")).toBe(2);
    await page.screenshot({ path: join(ARTIFACTS, 'hostile.png'), fullPage: true });

    expect(requested).toEqual([pathToFileURL(file).href]); // the <img> of the evidence was never an element, so never loaded
    expect(problems).toEqual([]);
  });
});
