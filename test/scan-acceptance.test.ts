import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { timing } from '../src/scanner/checks/inject.js';
import type { JsonReport } from '../src/scanner/report/json.js';
import { CHECKS } from '../src/scanner/runner.js';
import { severityRank } from '../src/scanner/types.js';
import { SECURE, startVulnerableApi, type VulnerableApi, type Vulnerabilities } from './fixtures/vulnerable/index.js';

/**
 * Issue 10's acceptance, end to end through the CLI: the whole scan (every check, --openapi,
 * callers A and B by --login, --destructive) against the vulnerable fixture with every switch on
 * finds something for every check; against the same API with every switch off it finds nothing of
 * medium or higher, in --destructive and in safe mode. Each check's own tests pin what it finds
 * for each switch; this file proves the checks do not mask or trip each other.
 */

let api: VulnerableApi | undefined;
let dir: string | undefined;
const saved = timing.sleepSeconds;
/** HTTPS for every variant: the secure API is served over TLS, with plain HTTP redirecting. */
let pems: { cert: string; key: string };
beforeAll(async () => {
  timing.sleepSeconds = 1; // the time-based probes sleep 1 s here (2 s by default)
  const made = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  pems = { cert: made.cert, key: made.private };
});
afterAll(() => {
  timing.sleepSeconds = saved;
});
afterEach(async () => {
  await api?.close();
  api = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Modes of the fixture that are not vulnerabilities (the time-based checks must not report them). */
const NOT_VULNERABILITIES = new Set(['slowOnce', 'slowDown', 'throttleEveryOther']);

async function fullScan(switches: Partial<Vulnerabilities>, extra: string[]): Promise<{ code: number; report: JsonReport; err: string[] }> {
  api = await startVulnerableApi(switches, pems);
  dir = mkdtempSync(join(tmpdir(), 'rampart-scan-acceptance-'));
  const doc = join(dir, 'openapi.json');
  writeFileSync(doc, JSON.stringify(api.openapi));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, api.cert!);
  const err: string[] = [];
  const argv = [
    'scan', api.url, '--openapi', doc, '--http-url', api.httpUrl!,
    '--login', '/api/login', '--user', 'alice', '--password', 'alice-password-1', '--user-b', 'bob', '--password-b', 'bob-password-1',
    '--rate', '1000', '--max-requests', '3000', '--format', 'json', '--out', join(dir, 'out'), '--fail-on', 'medium',
    ...extra,
  ];
  if (!extra.includes('--insecure')) argv.push('--ca', ca);
  const code = await main(argv, { out: () => {}, err: (l) => err.push(l) });
  const report = JSON.parse(readFileSync(join(dir, 'out', 'rampart-scan.json'), 'utf8')) as JsonReport;
  return { code, report, err };
}

describe('rampart scan: acceptance against the vulnerable fixture', () => {
  it('every switch on, --destructive: every check finds its vulnerability', async () => {
    const all = Object.fromEntries(Object.keys(SECURE).map((k) => [k, !NOT_VULNERABILITIES.has(k)])) as unknown as Vulnerabilities;
    // --insecure: an expired certificate is one of the switches, and --ca would refuse it.
    const { code, report, err } = await fullScan(all, ['--destructive', '--insecure']);
    expect(code, err.join('\n')).toBe(1);
    const byCheck = new Map<string, string[]>();
    for (const f of report.findings) byCheck.set(f.check, [...(byCheck.get(f.check) ?? []), f.id]);
    const silent = CHECKS.map((c) => c.id).filter((id) => !byCheck.has(id));
    expect(silent, `checks that found nothing; skipped: ${JSON.stringify(report.stats.skipped)}`).toEqual([]);
    expect(report.stats.incompleteChecks).toEqual([]);
    // Recorded for docs/scanner.md: findings, requests, time.
    console.log(`[acceptance] every switch on: ${report.findings.length} findings from ${byCheck.size} checks, ${report.stats.requests} requests, ${report.stats.durationMs} ms`);
  }, 120_000);

  it('every switch off, --destructive: no finding of medium or higher (zero false positives), every write cleaned up', async () => {
    const { code, report, err } = await fullScan({}, ['--destructive']);
    expect(report.findings.filter((f) => severityRank(f.severity) >= severityRank('medium'))).toEqual([]);
    expect(code, err.join('\n')).toBe(0);
    expect(report.stats.incompleteChecks).toEqual([]);
    console.log(`[acceptance] secure, --destructive: ${report.findings.length} findings below medium (${report.findings.map((f) => f.id).join(', ') || 'none'}), ${report.stats.requests} requests, ${report.stats.durationMs} ms`);
  }, 120_000);

  it('every switch off, safe mode: no finding of medium or higher, and nothing but reads, logins and one logout reached the API', async () => {
    const { code, report } = await fullScan({}, []);
    expect(report.findings.filter((f) => severityRank(f.severity) >= severityRank('medium'))).toEqual([]);
    expect(code).toBe(0);
    // Logins (callers A and B, the enumeration probes, the failed-login burst) and the logout of the
    // one session jwt.valid-after-logout opened itself (caller A's token stays valid).
    const writes = api!.requests.filter((r) => !['GET', 'HEAD', 'OPTIONS', 'TRACE'].includes(r.method) && r.path !== '/api/login');
    expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /api/logout']);
    console.log(`[acceptance] secure, safe: ${report.findings.length} findings below medium, ${report.stats.requests} requests, ${report.stats.durationMs} ms`);
  }, 120_000);
});
