import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { scanCommand, type ScanCliOptions } from '../src/scanner/cli.js';
import { fingerprintOf, toReport } from '../src/scanner/report/baseline.js';
import { escapeHtml, renderHtml } from '../src/scanner/report/html.js';
import { progressFrame } from '../src/scanner/report/progress.js';
import { SARIF_SCHEMA } from '../src/scanner/report/sarif.js';
import { CHECKS, type ScanResult } from '../src/scanner/runner.js';
import type { Finding } from '../src/scanner/types.js';
import { sarifErrors } from './fixtures/sarif/index.js';
import { startVulnerableApi, type VulnerableApi } from './fixtures/vulnerable/index.js';

/** The reports of `rampart scan`: JSON (and its JSON Schema), SARIF (the official schema), HTML, the baseline, the progress bar, exit codes. */

let api: VulnerableApi | undefined;
let dir: string | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const tmp = () => (dir ??= mkdtempSync(join(tmpdir(), 'rampart-scan-reports-')));

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  // The fixture is plain HTTP here: the transport check (its own tests) would add its high finding to every report.
  const code = await main(['scan', ...argv, '--rate', '1000', '--skip-checks', 'transport'], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

interface JsonFinding {
  id: string;
  severity: string;
  fingerprint: string;
  baselined: boolean;
}
interface JsonOut {
  findings: JsonFinding[];
  baseline?: { file: string; accepted: number; new: number; fixed: number; fixedFingerprints: string[] };
}
interface SarifOut {
  $schema: string;
  runs: {
    results: { ruleId: string; baselineState?: string; fingerprints: Record<string, string>; properties: { findingId: string }; locations: { logicalLocations: { name: string }[]; physicalLocation?: { artifactLocation: { uri: string }; region: { startLine: number } } }[] }[];
    properties: Record<string, unknown>;
  }[];
}

/** The findings of the two switches these tests turn on (other checks may add findings of their own). */
const OURS = ['cors.reflected-origin', 'headers.missing'];
const ours = (findings: JsonFinding[]) => findings.filter((f) => OURS.includes(f.id)).map((f) => [f.id, f.baselined]);

async function jsonOf(argv: string[]): Promise<{ code: number; json: JsonOut; err: string[] }> {
  const r = await cli([...argv, '--format', 'json']);
  expect(r.out.length, r.err.join('\n')).toBeGreaterThan(0);
  return { code: r.code, json: JSON.parse(r.out.join('\n')) as JsonOut, err: r.err };
}

async function sarifOf(argv: string[]): Promise<{ code: number; sarif: SarifOut }> {
  const r = await cli([...argv, '--format', 'sarif']);
  const sarif = JSON.parse(r.out.join('\n')) as SarifOut;
  expect(sarifErrors(sarif), 'the official SARIF 2.1.0 schema').toEqual([]);
  return { code: r.code, sarif };
}

/** The report's schema, and a copy that refuses properties it does not declare (so a field added to the report without documenting it fails here). */
function reportValidators() {
  const schema = JSON.parse(readFileSync(new URL('../docs/scanner-report.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const closed = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(closed);
    if (typeof s !== 'object' || s === null) return s;
    const o = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'properties' || k === 'definitions' ? Object.fromEntries(Object.entries(v as object).map(([p, sub]) => [p, closed(sub)])) : closed(v)]));
    return 'properties' in o ? { ...o, additionalProperties: false } : o;
  };
  const ajv = new Ajv({ strict: true, allErrors: true });
  (addFormatsModule as unknown as typeof addFormatsModule.default)(ajv);
  return { open: ajv.compile(schema), closed: ajv.compile(closed(schema) as object) };
}

const HOSTILE = `HTTP/1.1 200\ncontent-type: text/html\n\n</pre></details><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2"> ' " & \u0000\u001b[31m`;

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
    detail: '<script>alert("detail")</script>',
    remediation: '<a href="javascript:alert(1)">fix</a>',
    operation: { template: '/a/{id}"><script>', source: { uri: 'api"><script>.yaml', line: 3, column: 5 } },
  };
  return {
    target: 'http://127.0.0.1:1/',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    findings: [finding],
    checks: CHECKS,
    document: 'api"><script>.yaml',
    stats: { requests: 3, discoveryRequests: 1, budget: 500, durationMs: 1000, endpoints: 1, incompleteChecks: ['<script>'], skipped: [{ check: 'jwt', reason: 'needs <b>--auth</b>' }], bySeverity: { info: 0, low: 0, medium: 0, high: 1, critical: 0 } },
  };
}

describe('JSON report', () => {
  it('validates against docs/scanner-report.schema.json, and every field it writes is declared there', async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    const { code, json } = await jsonOf([api.url]);
    expect(code).toBe(1);
    const v = reportValidators();
    expect(v.open(json), JSON.stringify(v.open.errors)).toBe(true);
    expect(v.closed(json), JSON.stringify(v.closed.errors)).toBe(true);
    expect(ours(json.findings)).toEqual([
      ['cors.reflected-origin', false],
      ['headers.missing', false],
    ]);
    expect(json.findings.every((f) => !f.baselined)).toBe(true);
    expect(json.baseline).toBeUndefined();
    // The schema can fail: a wrong severity, an unknown field (closed copy) and a short fingerprint are refused.
    const broken = structuredClone(json) as unknown as { findings: Record<string, unknown>[] };
    broken.findings[0]!.severity = 'severe';
    expect(v.open(broken)).toBe(false);
    const extra = structuredClone(json) as unknown as { findings: Record<string, unknown>[] };
    extra.findings[0]!.undocumented = 1;
    expect(v.open(extra)).toBe(true);
    expect(v.closed(extra)).toBe(false);
    const short = structuredClone(json) as unknown as { findings: Record<string, unknown>[] };
    short.findings[0]!.fingerprint = 'abc';
    expect(v.open(short)).toBe(false);
  });

  it('fingerprints: the same across two runs, one per finding; id, host, method and path template decide, not the evidence', async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    const first = (await jsonOf([api.url])).json.findings.map((f) => f.fingerprint);
    const second = (await jsonOf([api.url])).json.findings.map((f) => f.fingerprint);
    expect(second).toEqual(first);
    expect(new Set(first).size).toBe(first.length);
    for (const fp of first) expect(fp).toMatch(/^[0-9a-f]{32}$/);

    const f = hostileResult().findings[0]!;
    const base = fingerprintOf(f);
    expect(fingerprintOf({ ...f, location: { ...f.location, url: 'http://127.0.0.1:1/b?other=1' } })).toBe(base); // the template decides, not the concrete URL
    const { operation: _op, ...noOperation } = f;
    expect(fingerprintOf({ ...noOperation, location: { ...f.location, url: 'http://127.0.0.1:1/x?1' } })).toBe(fingerprintOf({ ...noOperation, location: { ...f.location, url: 'http://127.0.0.1:1/x?2' } }));
    expect(fingerprintOf({ ...f, id: 'headers.version-disclosure' })).not.toBe(base);
    expect(fingerprintOf({ ...f, location: { ...f.location, host: '127.0.0.1:2' } })).not.toBe(base);
    expect(fingerprintOf({ ...f, location: { ...f.location, method: 'POST' } })).not.toBe(base);
    expect(fingerprintOf({ ...f, operation: { template: '/b/{id}' } })).not.toBe(base);
  });
});

describe('--baseline', () => {
  it('a previous JSON report accepts what it lists: marked, not counted for --fail-on (exit 0), SARIF baselineState unchanged', async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    const out = tmp();
    const first = await cli([api.url, '--format', 'json', '--out', out]);
    expect(first.code).toBe(1); // without a baseline: the high CORS finding fails the run
    const file = join(out, 'rampart-scan.json');

    const { code, json } = await jsonOf([api.url, '--baseline', file]);
    expect(code).toBe(0);
    expect(ours(json.findings)).toEqual([
      ['cors.reflected-origin', true],
      ['headers.missing', true],
    ]);
    expect(json.findings.every((f) => f.baselined)).toBe(true);
    const n = json.findings.length;
    expect(json.baseline).toEqual({ file, accepted: n, new: 0, fixed: 0, fixedFingerprints: [] });
    expect((await cli([api.url, '--baseline', file, '--fail-on', 'info'])).code).toBe(0);

    const { sarif } = await sarifOf([api.url, '--baseline', file]);
    expect(sarif.runs[0]!.results.map((r) => r.baselineState)).toEqual(Array(n).fill('unchanged'));
    expect(sarif.runs[0]!.properties.baseline).toEqual({ file, accepted: n, new: 0, fixed: 0 });
  });

  it('a list of fingerprints: accepted, new and fixed; --fail-on counts only the new ones', async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    const { json: plain } = await jsonOf([api.url]);
    const cors = plain.findings.find((f) => f.id === 'cors.reflected-origin')!;
    const host = new URL(api.url).host;
    const gone = fingerprintOf({ id: 'cors.null-origin', location: { method: 'GET', url: api.url, host } });
    const list = join(tmp(), 'accepted.txt');
    writeFileSync(list, `# accepted findings of ${api.url}\n\n${cors.fingerprint}  cors.reflected-origin GET / — accepted until the CORS rewrite\n${gone} # was fixed\n`);

    const { code, json } = await jsonOf([api.url, '--baseline', list]);
    expect(code).toBe(0); // the high one is accepted; the new one is medium, below --fail-on high
    expect(ours(json.findings)).toEqual([
      ['cors.reflected-origin', true],
      ['headers.missing', false],
    ]);
    expect(json.findings.filter((f) => f.baselined).map((f) => f.id)).toEqual(['cors.reflected-origin']);
    expect(json.baseline).toEqual({ file: list, accepted: 1, new: json.findings.length - 1, fixed: 1, fixedFingerprints: [gone] });
    expect((await cli([api.url, '--baseline', list, '--fail-on', 'medium'])).code).toBe(1);

    const { sarif } = await sarifOf([api.url, '--baseline', list]);
    expect(sarif.runs[0]!.results.map((r) => [r.properties.findingId, r.baselineState])).toEqual(json.findings.map((f) => [f.id, f.baselined ? 'unchanged' : 'new']));

    const terminal = (await cli([api.url, '--baseline', list])).out;
    expect(terminal).toContain('MEDIUM (1)');
    expect(terminal).not.toContain('HIGH (1)');
    expect(terminal).toContain('ACCEPTED BY THE BASELINE (1)');
    expect(terminal).toContain(`baseline ${list}: ${json.findings.length - 1} new, 1 accepted, 1 fixed (listed, not found again)`);
  });

  it('a missing, unreadable or invalid baseline: exit 2 with a clear message, before any request is sent', async () => {
    api = await startVulnerableApi({ corsReflect: true });
    const d = tmp();
    const write = (name: string, text: string) => {
      writeFileSync(join(d, name), text);
      return join(d, name);
    };
    mkdirSync(join(d, 'folder'));
    const cases: [string, RegExp][] = [
      [join(d, 'missing.json'), /--baseline .*missing\.json: cannot read it \(no such file\)/],
      [join(d, 'folder'), /--baseline .*folder: cannot read it \(it is a directory\)/],
      [write('broken.json', '{"schemaVersion": 1, "findings": ['), /--baseline .*broken\.json: not valid JSON/],
      [write('v2.json', '{"schemaVersion": 2, "findings": []}'), /--baseline .*v2\.json: schemaVersion 2 is not a version this rampart reads \(1\)/],
      [write('nofindings.json', '{"schemaVersion": 1}'), /findings is not an array/],
      [write('other.json', '{"findings": []}'), /other\.json: not a rampart scan JSON report \(no schemaVersion\)/],
      [write('log.sarif', '{"version": "2.1.0", "runs": []}'), /log\.sarif: a SARIF log; give the JSON report of that run \(rampart-scan\.json\) or a list of fingerprints/],
      [write('numbers.json', '[1, 2]'), /numbers\.json: not a rampart scan JSON report/],
      [write('badentry.json', '{"schemaVersion": 1, "findings": [{"title": "x"}]}'), /findings\[0\] has neither a fingerprint nor an id and location/],
      [write('list.txt', `# ok\n${'a'.repeat(32)}\nnot-a-fingerprint\n`), /--baseline .*list\.txt:3: 'not-a-fingerprint' is not a finding fingerprint \(32 hex digits\)/],
    ];
    for (const [file, message] of cases) {
      const { code, err, out } = await cli([api.url, '--baseline', file]);
      expect(code, file).toBe(2);
      expect(err.join('\n')).toMatch(message);
      expect(out).toEqual([]);
    }
    // The baseline where this run writes its report: it would accept every new finding next time.
    const inOut = await cli([api.url, '--baseline', join(d, 'rampart-scan.json'), '--format', 'json', '--out', d]);
    expect(inOut.code).toBe(2);
    expect(inOut.err.join('\n')).toMatch(/--baseline .*rampart-scan\.json would be overwritten by this run's report/);
    expect(api.requests).toEqual([]);
    // An empty list is a valid baseline that accepts nothing.
    expect((await cli([api.url, '--baseline', write('empty.txt', '')])).code).toBe(1);
  });
});

describe('SARIF 2.1.0', () => {
  it('validates against the official schema, with and without --openapi; the validator refuses a broken log', async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    const crawl = await sarifOf([api.url]);
    expect(crawl.code).toBe(1);
    expect(crawl.sarif.$schema).toBe(SARIF_SCHEMA);
    expect(SARIF_SCHEMA).toBe('https://json.schemastore.org/sarif-2.1.0.json'); // the schema the tests validate against
    const results = crawl.sarif.runs[0]!.results;
    expect(results.map((r) => r.properties.findingId)).toEqual(expect.arrayContaining(OURS));
    for (const r of results) {
      expect(r.locations[0]!.logicalLocations[0]!.name).toMatch(/^GET \//);
      expect(r.locations[0]!.physicalLocation).toBeUndefined(); // no document, no physical location
      expect(r.baselineState).toBeUndefined(); // no baseline, no state
      expect(r.fingerprints['rampartFingerprint/v1']).toMatch(/^[0-9a-f]{32}$/);
    }

    const doc = join(tmp(), 'api.json');
    writeFileSync(doc, JSON.stringify(api.openapi, null, 2));
    const withDoc = await sarifOf([api.url, '--openapi', doc]);
    const located = withDoc.sarif.runs[0]!.results.map((r) => r.locations[0]!).filter((l) => l.physicalLocation !== undefined);
    expect(located.length).toBeGreaterThan(0);
    for (const l of located) {
      expect(l.physicalLocation!.artifactLocation.uri).toMatch(/api\.json$/);
      expect(l.physicalLocation!.region.startLine).toBeGreaterThan(1);
      expect(l.logicalLocations[0]!.name).toMatch(/^[A-Z]+ \/\S*$/);
    }

    // The schema check can fail: an unknown level, an unknown baselineState, a result without a message.
    for (const breakIt of [
      (s: SarifOut) => ((s.runs[0]!.results[0] as unknown as Record<string, unknown>).level = 'fatal'),
      (s: SarifOut) => ((s.runs[0]!.results[0] as unknown as Record<string, unknown>).baselineState = 'accepted'),
      (s: SarifOut) => delete (s.runs[0]!.results[0] as unknown as Record<string, unknown>).message,
      (s: SarifOut) => ((s.runs[0]!.results[0]!.locations[0]!.physicalLocation as unknown as Record<string, unknown>).region = { startLine: 0 }),
    ]) {
      const broken = structuredClone(withDoc.sarif);
      const r = broken.runs[0]!.results.find((x) => x.locations[0]!.physicalLocation !== undefined)!;
      broken.runs[0]!.results[0] = r;
      breakIt(broken);
      expect(sarifErrors(broken)).not.toEqual([]);
    }
  });
});

describe('HTML report', () => {
  it('--format html: one self-contained file in --out (rampart-scan.html), alone to stdout without', async () => {
    api = await startVulnerableApi({ missingHeaders: true, corsReflect: true });
    const out = tmp();
    const { code, out: stdout } = await cli([api.url, '--format', 'terminal,html', '--out', out]);
    expect(code).toBe(1);
    expect(stdout.join('\n')).toMatch(/HIGH \(1\)/);
    const page = readFileSync(join(out, 'rampart-scan.html'), 'utf8');
    expect(page).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(page).toContain('<h2 class="sev-high">High (1)</h2>');
    expect(page).toContain('<h2 class="sev-medium">Medium (1)</h2>');
    expect(page).toContain('API8:2023 Security Misconfiguration');
    // Nothing outside the file: no script, no src, no link to a stylesheet or anything else.
    expect(page).not.toMatch(/<script|<link|<img|<iframe|\ssrc=|@import|url\(/i);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(page)![1]!.replaceAll('&#39;', "'");
    expect(csp).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; base-uri 'none'; form-action 'none'$/);

    const alone = await cli([api.url, '--format', 'html']);
    expect(alone.out.join('\n')).toMatch(/^<!doctype html>/);
    expect((await cli([api.url, '--format', 'html,json'])).code).toBe(2); // two documents need --out
  });

  it('escapes everything the target chose: <script>, </pre>, quotes and control characters stay text', () => {
    const page = renderHtml(toReport(hostileResult()));
    const tags = new Set([...page.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => m[1]!.toLowerCase()));
    const allowed = ['html', 'head', 'meta', 'title', 'style', 'body', 'main', 'header', 'h1', 'h2', 'h3', 'h4', 'p', 'section', 'dl', 'dt', 'dd', 'code', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span', 'article', 'details', 'summary', 'pre', 'strong', 'ul', 'li', 'footer'];
    expect([...tags].filter((t) => !allowed.includes(t))).toEqual([]);
    expect(page).not.toMatch(/<script|<img|<a |<b>/i); // as text, `onerror=` and `javascript:` are harmless
    expect(page).toContain(escapeHtml(HOSTILE));
    expect(escapeHtml(HOSTILE)).toContain('&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt; &#39; &quot; &amp; ␀␛[31m');
    expect(page).toContain('<code>GET /a/{id}&quot;&gt;&lt;script&gt;</code>');
    expect(page).toContain('<code>api&quot;&gt;&lt;script&gt;.yaml:3:5</code>');
    expect(page).toContain('<li><code>jwt</code>: needs &lt;b&gt;--auth&lt;/b&gt;</li>');
    // One <pre> per excerpt, each closed by the report, none by the evidence.
    expect(page.match(/<pre/g)).toHaveLength(2);
    expect(page.match(/<\/pre>/g)).toHaveLength(2);
  });
});

describe('HTML report with a baseline', () => {
  it('shows the accepted findings in their own section, the count of new ones and of fixed ones', () => {
    const result = hostileResult();
    const page = renderHtml(toReport(result, { file: 'accepted.txt', fingerprints: [fingerprintOf(result.findings[0]!), 'e'.repeat(32)] }));
    expect(page).toContain('<h2>Findings</h2><p class="none">No new findings.</p>');
    expect(page).toContain('<section id="accepted"><h2>Accepted by the baseline (1)</h2>');
    expect(page).toContain('<dd id="total">1 (0 new, 1 accepted by the baseline)</dd>');
    expect(page).toContain('<dt>Baseline</dt><dd><code>accepted.txt</code>: 1 accepted, 1 fixed (listed, not found again)</dd>');
    expect(page).toContain('<tr class="sev-high"><th><span class="badge sev-high">high</span></th><td class="n">0</td><td class="n">1</td></tr>');
    expect(page).not.toContain('id="sev-high"'); // not among the new ones
  });
});

describe('progress bar', () => {
  const opts = (extra: Partial<ScanCliOptions> = {}): ScanCliOptions => ({ format: 'terminal', failOn: 'high', rate: '1000', timeout: '5', maxRequests: '500', ...extra });

  it('on a terminal (the TTY flag): redrawn in place on stderr, one frame per check, cleared before the report', async () => {
    api = await startVulnerableApi({ corsReflect: true });
    const events: [string, string][] = [];
    const code = await scanCommand(api.url, opts({ verbose: true }), {
      out: (l) => events.push(['out', l]),
      err: (l) => events.push(['err', l]),
      color: false,
      progress: true,
      write: (t) => events.push(['write', t]),
    });
    expect(code).toBe(1);
    const frames = events.filter(([k, t]) => k === 'write' && t.length > 4).map(([, t]) => t);
    const CLEAR = '\r\x1b[K';
    for (const f of frames) expect(f.startsWith(CLEAR) || /^\[/.test(f)).toBe(true);
    const drawn = frames.filter((f) => f.startsWith(CLEAR)).map((f) => f.slice(CLEAR.length));
    const n = CHECKS.length;
    expect(drawn.map((f) => f.replace(/ · \d+ requests · /, ' · R requests · '))).toEqual([
      progressFrame({ done: 0, total: n, check: 'discovering endpoints', requests: 0 }).replace(/ · \d+ requests · /, ' · R requests · '),
      ...CHECKS.map((c, i) => progressFrame({ done: i, total: n, check: c.id, requests: 0 }).replace(/ · \d+ requests · /, ' · R requests · ')),
      progressFrame({ done: n, total: n, check: undefined, requests: 0 }).replace(/ · \d+ requests · /, ' · R requests · '),
    ]);
    expect(drawn[0]).toMatch(/^\[-{20}\] 0\/\d+ checks · 0 requests · discovering endpoints$/);
    expect(drawn[1]).toMatch(new RegExp(String.raw`^\[-{20}\] 0\/\d+ checks · [1-9]\d* requests · ${CHECKS[0]!.id}$`));
    expect(drawn.at(-1)).toMatch(/^\[#{20}\] (\d+)\/\1 checks · \d+ requests · done$/);
    // The request count grows with the checks.
    const counts = drawn.map((f) => Number(/ (\d+) requests/.exec(f)![1]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts.at(-1)).toBeGreaterThan(counts[0]!);
    // Once the bar is up, every log line (--verbose) is written on a cleared line and the bar drawn again under it.
    const firstFrame = events.findIndex(([k]) => k === 'write');
    const firstOut = events.findIndex(([k]) => k === 'out');
    const lastWrite = events.map(([k]) => k).lastIndexOf('write');
    const logged = [...events.entries()].filter(([i, [kind]]) => kind === 'err' && i > firstFrame && i < lastWrite);
    expect(logged.length).toBeGreaterThan(0);
    for (const [i] of logged) {
      expect(events[i - 1]).toEqual(['write', CLEAR]);
      expect(events[i + 1]![0]).toBe('write');
      expect(events[i + 1]![1]).toMatch(/^\[[#-]{20}\] /);
    }
    expect(lastWrite).toBeLessThan(firstOut);
    expect(events[lastWrite]![1]).toBe(CLEAR);
  });

  it('not without a terminal: no frame, no carriage return (the default of `main` with any other output)', async () => {
    api = await startVulnerableApi({ corsReflect: true });
    const writes: string[] = [];
    const lines: string[] = [];
    expect(await scanCommand(api.url, opts(), { out: (l) => lines.push(l), err: (l) => lines.push(l), color: false, progress: false, write: (t) => writes.push(t) })).toBe(1);
    expect(writes).toEqual([]);
    const { err, out } = await cli([api.url, '--verbose']);
    const all = [...err, ...out].join('\n');
    expect(all).not.toContain('\r');
    expect(all).not.toContain('\u001b');
    expect(all).not.toMatch(/\[[#-]{20}\]/);
  });
});
