import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createdId } from '../src/scanner/checks/authz-common.js';
import { bolaCheck } from '../src/scanner/checks/bola.js';
import { functionLevelCheck } from '../src/scanner/checks/function-level.js';
import { inventoryCheck } from '../src/scanner/checks/inventory.js';
import { massAssignmentCheck } from '../src/scanner/checks/mass-assignment.js';
import { methodsCheck } from '../src/scanner/checks/methods.js';
import { ssrfCheck } from '../src/scanner/checks/ssrf.js';
import { createHttpClient } from '../src/scanner/http.js';
import { CHECKS, runScan, type ScanResult } from '../src/scanner/runner.js';
import type { Check, ScanContext } from '../src/scanner/types.js';
import { SEED_NOTES } from './fixtures/vulnerable/authz.js';
import { startVulnerableApi, type VulnerableApi, type Vulnerabilities } from './fixtures/vulnerable/index.js';

/** The authorization and surface checks (bola, function-level, mass-assignment, methods, inventory, ssrf) against the fixture, over real HTTP on 127.0.0.1. */

const AUTHZ: readonly Check[] = [bolaCheck, functionLevelCheck, massAssignmentCheck, methodsCheck, inventoryCheck, ssrfCheck];
const IDS = new Set(AUTHZ.map((c) => c.id));
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const BOB_MARKER = SEED_NOTES.find((n) => n.ownerId === 'u-bob')!.title;

let api: VulnerableApi | undefined;
let other: Server | undefined;
let dir: string | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
  if (other !== undefined) {
    other.closeAllConnections();
    other.close();
    await once(other, 'close');
    other = undefined;
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Options {
  checks?: readonly Check[];
  destructive?: boolean;
  /** Which callers the scan gets (`--auth` alice, `--auth-b` bob). */
  callers?: 'ab' | 'a' | 'none' | 'aa';
  /** --openapi (the fixture's document, by URL); false: the crawl. */
  openapi?: boolean;
  /** One request before the scan: shifts which requests `throttleEveryOther` throttles. */
  shift?: boolean;
}

interface Scan {
  result: ScanResult;
  /** What the checks sent (after the document, the base URL and any login). */
  sent: VulnerableApi['requests'];
  warnings: string[];
}

async function scan(switches: Partial<Vulnerabilities>, o: Options = {}): Promise<Scan> {
  api = await startVulnerableApi(switches);
  const header = async (name: string) => `Authorization: Bearer ${await api!.auth.tokenFor(name)}`;
  const callers = o.callers ?? 'ab';
  const warnings: string[] = [];
  const start = { at: 0 };
  // Marks where the checks' traffic begins.
  const mark: Check = { id: 'mark', title: 'mark', owasp: 'API8:2023', description: 'marks the start', run: async () => ((start.at = api!.requests.length), []) };
  const http = createHttpClient({ rate: 1000, budget: 500, timeoutMs: 5000, maxBodyBytes: 1 << 20, insecure: false, logger: { debug: () => {}, warn: () => {} }, verbose: false });
  if (o.shift === true) await (await fetch(new URL('/health', api.url))).arrayBuffer();
  try {
    const result = await runScan({
      target: new URL(api.url),
      http,
      logger: { debug: () => {}, warn: (m) => warnings.push(m) },
      checks: [mark, ...(o.checks ?? AUTHZ)],
      options: { destructive: o.destructive === true },
      openapi: o.openapi === false ? undefined : `${api.url}openapi.json`,
      auth: callers === 'none' ? undefined : await header('alice'),
      authB: callers === 'ab' ? await header('bob') : callers === 'aa' ? await header('alice') : undefined,
    });
    return { result, sent: api.requests.slice(start.at), warnings };
  } finally {
    await http.close();
  }
}

const ours = (r: ScanResult) => r.findings.filter((f) => IDS.has(f.check));
const writesIn = (s: Scan) => s.sent.filter((r) => WRITES.has(r.method));

async function asUser(name: string, path: string): Promise<unknown> {
  const res = await fetch(new URL(path, api!.url), { headers: { authorization: `Bearer ${await api!.auth.tokenFor(name)}` } });
  return res.json();
}

describe('each switch → its finding; the switch off → none', () => {
  const cases: { switch: keyof Vulnerabilities; check: Check; destructive?: boolean; id: string; severity: string; owasp: string; url: RegExp; detail: RegExp }[] = [
    { switch: 'bolaRead', check: bolaCheck, id: 'bola.read', severity: 'high', owasp: 'API1:2023', url: /\/api\/notes\/n-1002$/, detail: /caller B.*marker "Bob: quarterly numbers draft"/ },
    { switch: 'bolaWrite', check: bolaCheck, destructive: true, id: 'bola.write', severity: 'high', owasp: 'API1:2023', url: /\/api\/notes\/n-\d+$/, detail: /set title of caller B's object \(created by B for this test\) to "rampart-scan-[0-9a-f]{8}".*B then read it back/ },
    { switch: 'bflaAdmin', check: functionLevelCheck, id: 'bfla.admin-operation', severity: 'high', owasp: 'API5:2023', url: /\/api\/admin\/users$/, detail: /tagged admin.*refused \(401\).*GET \/api\/admin\/users → 200/ },
    { switch: 'massAssignment', check: massAssignmentCheck, destructive: true, id: 'massassign.privileged-property', severity: 'high', owasp: 'API3:2023', url: /\/api\/profile$/, detail: /role = "admin" \(was "user"\).*read back \(GET \/api\/profile → 200\)/ },
    { switch: 'traceEnabled', check: methodsCheck, id: 'methods.trace', severity: 'medium', owasp: 'API8:2023', url: /:\d+\/$/, detail: /x-rampart-scan-trace/ },
    { switch: 'writeOnReadOnly', check: methodsCheck, id: 'methods.write-advertised', severity: 'low', owasp: 'API8:2023', url: /\/api\/v2\/reports$/, detail: /Allow: GET, HEAD, OPTIONS, DELETE.*--destructive/ },
    { switch: 'writeOnReadOnly', check: methodsCheck, destructive: true, id: 'methods.write-on-read-only', severity: 'medium', owasp: 'API8:2023', url: /\/api\/v2\/reports$/, detail: /GET only, yet DELETE \/api\/v2\/reports → 200.*random sibling path got 404/ },
    { switch: 'oldVersion', check: inventoryCheck, id: 'inventory.old-version', severity: 'medium', owasp: 'API9:2023', url: /\/api\/v1\/reports$/, detail: /\/api\/v1\/reports, which it does not declare, answers 200.*\/api\/v102\/reports\) gets 404.*without credentials/ },
    { switch: 'debugEndpoint', check: inventoryCheck, id: 'inventory.debug-endpoint', severity: 'medium', owasp: 'API9:2023', url: /\/debug\/vars$/, detail: /\/debug\/vars answers Go expvar.*random path got 404/ },
    { switch: 'ssrf', check: ssrfCheck, id: 'ssrf.url-parameter', severity: 'high', owasp: 'API7:2023', url: /\/api\/preview\?url=http%3A%2F%2F127\.0\.0\.1/, detail: /canary received GET \/<token>\/0 from 127\.0\.0\.1 \(user-agent: node\)/ },
  ];
  for (const c of cases) {
    it(`${c.switch}${c.destructive === true ? ' (--destructive)' : ''} → ${c.id} (${c.severity})`, async () => {
      const { result } = await scan({ [c.switch]: true }, { checks: [c.check], destructive: c.destructive });
      const found = result.findings.filter((f) => f.id === c.id);
      expect(found, JSON.stringify(result.findings.map((f) => [f.id, f.detail]))).toHaveLength(1);
      const f = found[0]!;
      expect(f).toMatchObject({ check: c.check.id, severity: c.severity, owasp: c.owasp, location: { host: new URL(api!.url).host } });
      expect(f.location.url).toMatch(c.url);
      expect(f.detail).toMatch(c.detail);
      expect(f.evidence.request).toMatch(/^[A-Z]+ \/\S* HTTP\/1\.1/);
      expect(f.evidence.response).toMatch(/^HTTP\/1\.1 \d{3}/);
      expect(f.remediation.length).toBeGreaterThan(40);
      expect(result.stats.incompleteChecks).toEqual([]);
      await api!.close();
      api = undefined;

      const secure = await scan({}, { checks: [c.check], destructive: c.destructive });
      expect(ours(secure.result), `${c.switch} off`).toEqual([]);
    });
  }

  it("BOLA evidence is A's exchange and contains B's marker; B's object is read by id, with A's credentials (masked)", async () => {
    const { result } = await scan({ bolaRead: true }, { checks: [bolaCheck] });
    const f = result.findings.find((x) => x.id === 'bola.read')!;
    expect(f.evidence.request).toMatch(/^GET \/api\/notes\/n-1002 HTTP\/1\.1\n[\s\S]*authorization: Bearer \*\*\*\*/);
    expect(f.evidence.response).toContain(BOB_MARKER);
    expect(f.evidence.response).toMatch(/^HTTP\/1\.1 200/);
    expect(f.operation).toMatchObject({ template: '/api/notes/{id}' });
  });

  it('the same user as A and B is no BOLA: skipped with the reason, nothing sent', async () => {
    const { result, sent } = await scan({ bolaRead: true, bolaWrite: true }, { checks: [bolaCheck], callers: 'aa', destructive: true });
    expect(ours(result)).toEqual([]);
    expect(result.stats.skipped).toEqual([{ check: 'bola', reason: expect.stringMatching(/A and B are the same user/) }]);
    expect(sent).toEqual([]);
  });

  it('--destructive cleans up: the objects created are deleted, changed values written back', async () => {
    const { result, warnings } = await scan({ bolaRead: true, bolaWrite: true, massAssignment: true }, { checks: [bolaCheck, massAssignmentCheck], destructive: true });
    expect(ours(result).map((f) => f.id).sort()).toEqual(['bola.read', 'bola.write', 'massassign.privileged-property']);
    expect(warnings).toEqual([]);
    expect(await asUser('bob', '/api/notes')).toEqual({ items: SEED_NOTES.filter((n) => n.ownerId === 'u-bob') });
    expect(await asUser('alice', '/api/notes')).toEqual({ items: SEED_NOTES.filter((n) => n.ownerId === 'u-alice') });
    expect(await asUser('alice', '/api/profile')).toMatchObject({ role: 'user', displayName: 'Alice' });
  });
});

describe('the whole area', () => {
  const every = { bolaRead: true, bolaWrite: true, bflaAdmin: true, massAssignment: true, traceEnabled: true, writeOnReadOnly: true, oldVersion: true, debugEndpoint: true, ssrf: true };

  it('every switch on, --destructive: every finding of the area, once', async () => {
    const { result } = await scan(every, { destructive: true });
    expect(ours(result).map((f) => f.id).sort()).toEqual([
      'bfla.admin-operation',
      'bola.read',
      'bola.write',
      'inventory.debug-endpoint',
      'inventory.old-version',
      'massassign.privileged-property',
      'methods.trace',
      'methods.write-on-read-only',
      'ssrf.url-parameter',
    ]);
    expect(result.stats.incompleteChecks).toEqual([]);
  });

  it('every switch on, safe mode: not one write, at most 80 requests; the destructive parts are skipped, with the reason', async () => {
    const s = await scan(every);
    expect(writesIn(s)).toEqual([]);
    expect(s.sent.length).toBeLessThanOrEqual(80);
    expect(ours(s.result).map((f) => f.id).sort()).toEqual(['bfla.admin-operation', 'bola.read', 'inventory.debug-endpoint', 'inventory.old-version', 'methods.trace', 'methods.write-advertised', 'ssrf.url-parameter']);
    expect(s.result.stats.skipped).toContainEqual({ check: 'mass-assignment', reason: expect.stringMatching(/only with --destructive/) });
  });

  it('the secure variant: nothing found, in safe mode (no writes, at most 80 requests) and with --destructive', async () => {
    const safe = await scan({});
    expect(ours(safe.result)).toEqual([]);
    expect(writesIn(safe)).toEqual([]);
    expect(safe.sent.length).toBeLessThanOrEqual(80);
    expect(safe.result.stats.incompleteChecks).toEqual([]);
    await api!.close();
    api = undefined;
    const destructive = await scan({}, { destructive: true });
    expect(ours(destructive.result)).toEqual([]);
    expect(destructive.result.stats.incompleteChecks).toEqual([]);
    expect(writesIn(destructive).length).toBeGreaterThan(0); // it did try
    expect(destructive.warnings).toEqual([]);
  });

  it('registered in CHECKS after the existing checks, in order', () => {
    const ids = CHECKS.map((c) => c.id);
    expect(ids.slice(ids.indexOf('bola'), ids.indexOf('bola') + AUTHZ.length)).toEqual(AUTHZ.map((c) => c.id));
    expect(ids.indexOf('bola')).toBeGreaterThan(ids.indexOf('cors'));
  });
});

describe('missing inputs are skipped with the reason', () => {
  it('no callers: bola and function-level say what they need; one caller: bola still needs B', async () => {
    const none = await scan({ bolaRead: true, bflaAdmin: true }, { checks: [bolaCheck, functionLevelCheck], callers: 'none' });
    expect(none.result.findings).toEqual([]);
    expect(none.result.stats.skipped).toEqual([
      { check: 'bola', reason: expect.stringMatching(/needs two callers: --auth and --auth-b/) },
      { check: 'function-level', reason: expect.stringMatching(/needs caller A, a normal \(non-admin\) user/) },
    ]);
    expect(none.sent).toEqual([]);
    await api!.close();
    api = undefined;
    const one = await scan({ bolaRead: true, bflaAdmin: true }, { checks: [bolaCheck, functionLevelCheck], callers: 'a' });
    expect(one.result.findings.map((f) => f.id)).toEqual(['bfla.admin-operation']);
    expect(one.result.stats.skipped).toEqual([{ check: 'bola', reason: expect.stringMatching(/needs two callers/) }]);
  });

  it('no document (the crawl): the document-driven parts skip; TRACE and the debug paths still run, with safe methods only', async () => {
    const s = await scan({ bolaRead: true, bflaAdmin: true, traceEnabled: true, debugEndpoint: true }, { openapi: false, destructive: false });
    expect(ours(s.result).map((f) => f.id).sort()).toEqual(['inventory.debug-endpoint', 'methods.trace']);
    const skipped = Object.fromEntries(s.result.stats.skipped.map((x) => [x.check, x.reason]));
    expect(skipped).toMatchObject({
      bola: expect.stringMatching(/needs an OpenAPI document \(--openapi\)/),
      'function-level': expect.stringMatching(/needs an OpenAPI document/),
      'mass-assignment': expect.stringMatching(/only with --destructive/),
      methods: expect.stringMatching(/^write-on-read-only needs an OpenAPI document/),
      inventory: expect.stringMatching(/^old-version needs an OpenAPI document/),
    });
    expect(new Set(s.sent.map((r) => r.method))).toEqual(new Set(['GET', 'TRACE']));
  });

  it('the secure fixture, crawled, every registered check: none of ours finds anything', async () => {
    const s = await scan({}, { openapi: false, checks: CHECKS, callers: 'none' });
    expect(ours(s.result)).toEqual([]);
    expect(writesIn(s)).toEqual([]);
  });

  it('ssrf: a target not on this host cannot reach the loopback canary: skipped, nothing sent', async () => {
    const skipped: { check: string; reason: string }[] = [];
    let sent = 0;
    const ctx = {
      target: new URL('https://api.example.com/'),
      options: { safe: true, destructive: false },
      http: { send: async () => (sent++, Promise.reject(new Error('no'))) },
      logger: { debug: () => {}, warn: () => {} },
      endpoints: [],
      observed: [],
      identities: {},
      skip: (check: string, reason: string) => skipped.push({ check, reason }),
    } as unknown as ScanContext;
    expect(await ssrfCheck.run(ctx)).toEqual([]);
    expect(sent).toBe(0);
    expect(skipped).toEqual([{ check: 'ssrf', reason: expect.stringMatching(/loopback \(127\.0\.0\.1\), which api\.example\.com cannot reach/) }]);
  });
});

describe('catch-all servers', () => {
  it('an app answering 200 to every path and method trips neither the debug paths, nor old versions, nor writes on read-only resources', async () => {
    other = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      // What a single-page app serves for any path, mentioning the words a careless signature might match.
      res.end('<!doctype html><title>App</title><div id="root">memstats cmdline phpinfo() PHP Version [core] Apache Server Status for</div>');
    });
    other.listen(0, '127.0.0.1');
    await once(other, 'listening');
    const base = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
    dir = mkdtempSync(join(tmpdir(), 'rampart-scan-authz-'));
    const doc = join(dir, 'spa.json');
    writeFileSync(doc, JSON.stringify({ openapi: '3.1.0', info: { title: 'spa', version: '1' }, paths: { '/api/v2/things': { get: { responses: { '200': { description: 'ok' } } } } } }));
    for (const destructive of [false, true]) {
      const http = createHttpClient({ rate: 1000, budget: 200, timeoutMs: 5000, maxBodyBytes: 1 << 20, insecure: false, logger: { debug: () => {}, warn: () => {} }, verbose: false });
      try {
        const result = await runScan({ target: new URL(base), http, logger: { debug: () => {}, warn: () => {} }, checks: [methodsCheck, inventoryCheck], options: { destructive }, openapi: doc });
        expect(result.findings, `destructive: ${destructive}`).toEqual([]);
        expect(result.stats.incompleteChecks).toEqual([]);
      } finally {
        await http.close();
      }
    }
  });
});

/** A server on 127.0.0.1 for one test (closed after it), and its document as a file. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, doc?: unknown): Promise<{ base: string; doc: string | undefined }> {
  other = createServer(handler);
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  const base = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
  if (doc === undefined) return { base, doc: undefined };
  dir ??= mkdtempSync(join(tmpdir(), 'rampart-scan-authz-'));
  const file = join(dir, `api-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(doc));
  return { base, doc: file };
}

async function scanOf(base: string, o: { checks: readonly Check[]; doc?: string | undefined; destructive?: boolean; auth?: string; authB?: string }): Promise<{ result: ScanResult; warnings: string[] }> {
  const warnings: string[] = [];
  const http = createHttpClient({ rate: 1000, budget: 300, timeoutMs: 5000, maxBodyBytes: 1 << 20, insecure: false, logger: { debug: () => {}, warn: () => {} }, verbose: false });
  try {
    const result = await runScan({ target: new URL(base), http, logger: { debug: () => {}, warn: (m) => warnings.push(m) }, checks: o.checks, options: { destructive: o.destructive === true }, openapi: o.doc, auth: o.auth, authB: o.authB });
    return { result, warnings };
  } finally {
    await http.close();
  }
}

const bearer = { type: 'http', scheme: 'bearer' };
const ALICE = 'Authorization: Bearer alice-token';
const BOB = 'Authorization: Bearer bob-token';
const callerOf = (req: IncomingMessage) => ({ 'Bearer alice-token': 'alice', 'Bearer bob-token': 'bob' })[req.headers.authorization ?? ''];
const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

describe('throttled answers (429, 503, Retry-After) decide nothing', () => {
  for (const destructive of [false, true]) {
    it(`throttleEveryOther: the secure variant gives no finding, whichever requests are throttled${destructive ? ' (--destructive)' : ''}`, async () => {
      for (const shift of [false, true]) {
        // ssrf decides on a canary hit alone (no comparison): left out, it waits 3 s for nothing here.
        const s = await scan({ throttleEveryOther: true }, { destructive, shift, checks: AUTHZ.filter((c) => c !== ssrfCheck) });
        const throttled = s.sent.filter((r) => !['/api/login', '/openapi.json'].includes(r.path));
        expect(throttled.length, 'the checks sent requests').toBeGreaterThan(10);
        expect(ours(s.result), `shift: ${shift}`).toEqual([]);
        expect(s.result.stats.incompleteChecks).toEqual([]);
        await api!.close();
        api = undefined;
      }
    });
  }

  it('bola: an anonymous 429 does not make a public object look like BOLA (the same object refused anonymously is one)', async () => {
    const notes = [
      { id: 'a-1', title: 'Alice: a published essay on tides', owner: 'alice' },
      { id: 'b-1', title: 'Bob: a published essay on volcanoes', owner: 'bob' },
    ];
    const doc = {
      openapi: '3.1.0',
      info: { title: 'published notes', version: '1' },
      security: [{ b: [] }],
      components: { securitySchemes: { b: bearer } },
      paths: {
        '/notes': { get: { responses: { '200': { description: "the caller's notes" } } } },
        '/notes/{id}': { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], get: { security: [{}, { b: [] }], responses: { '200': { description: 'a note: published, anyone reads it' } } } },
      },
    };
    const found: Record<string, string[]> = {};
    const skipped: Record<string, string[]> = {};
    for (const anonymous of ['throttled', 'published', 'refused'] as const) {
      const { base, doc: file } = await serve((req, res) => {
        req.resume();
        const caller = callerOf(req);
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        if (path === '/notes') return caller === undefined ? sendJson(res, 401, { error: 'unauthorized' }) : sendJson(res, 200, { items: notes.filter((n) => n.owner === caller) });
        const id = /^\/notes\/([^/]+)$/.exec(path)?.[1];
        const note = notes.find((n) => n.id === id);
        if (id === undefined || note === undefined) return sendJson(res, 404, { error: 'not found' });
        // A limiter stricter on anonymous callers (their shared bucket is empty); or no anonymous access at all.
        if (caller === undefined && anonymous === 'throttled') return sendJson(res, 429, { error: 'too many requests' }, { 'retry-after': '30' });
        if (caller === undefined && anonymous === 'refused') return sendJson(res, 401, { error: 'unauthorized' });
        sendJson(res, 200, note);
      }, doc);
      const { result } = await scanOf(base, { checks: [bolaCheck], doc: file, auth: ALICE, authB: BOB });
      found[anonymous] = result.findings.map((f) => f.id);
      skipped[anonymous] = result.stats.skipped.map((x) => x.reason);
      other!.closeAllConnections();
      other!.close();
      await once(other!, 'close');
      other = undefined;
    }
    expect(found).toEqual({ throttled: [], published: [], refused: ['bola.read'] });
    expect(skipped.throttled).toContainEqual(expect.stringMatching(/no decision.*GET \/notes\/b-1 → 429.*throttled/));
  });

  it('function-level: a 403 with Retry-After (a secondary rate limit, as GitHub answers) is no refusal of anonymous callers (a 403 without it is one)', async () => {
    const found: Record<string, string[]> = {};
    for (const limited of [true, false]) {
      const { base, doc } = await serve((req, res) => {
        req.resume();
        if (callerOf(req) === undefined) return sendJson(res, 403, { message: limited ? 'You have exceeded a secondary rate limit' : 'Forbidden' }, limited ? { 'retry-after': '60' } : {});
        sendJson(res, 200, { status: 'green', version: '4.2.0' });
      }, { openapi: '3.1.0', info: { title: 'status', version: '1' }, paths: { '/admin/status': { get: { tags: ['admin'], responses: { '200': { description: 'the service status' } } } } } });
      const { result } = await scanOf(base, { checks: [functionLevelCheck], doc, auth: ALICE });
      found[limited ? 'limited' : 'refused'] = result.findings.map((f) => f.id);
      other!.closeAllConnections();
      other!.close();
      await once(other!, 'close');
      other = undefined;
    }
    expect(found).toEqual({ limited: [], refused: ['bfla.admin-operation'] });
  });

  it('methods and inventory: a catch-all that throttles every second request gives no finding, whichever requests are throttled', async () => {
    let counted = 0;
    const { base, doc } = await serve((req, res) => {
      req.resume();
      if (counted++ % 2 === 1) return sendJson(res, 429, { error: 'too many requests' }, { 'retry-after': '1' });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>App</title><div id="root">memstats cmdline phpinfo() PHP Version [core] Apache Server Status for</div>');
    }, { openapi: '3.1.0', info: { title: 'spa', version: '1' }, paths: { '/api/v2/things': { get: { responses: { '200': { description: 'ok' } } } } } });
    for (const destructive of [false, true]) {
      for (const phase of [0, 1]) {
        counted = phase;
        const { result } = await scanOf(base, { checks: [methodsCheck, inventoryCheck], doc, destructive });
        expect(result.findings.map((f) => `${f.id}: ${f.detail}`), `destructive: ${destructive}, phase ${phase}`).toEqual([]);
        expect(result.stats.incompleteChecks).toEqual([]);
      }
    }
  });
});

describe('a hostile Location header', () => {
  it('createdId: a Location that is not valid percent-encoding names no id (no URIError)', () => {
    const res = (location: string) => ({ status: 201, headers: { location }, body: '' }) as unknown as Parameters<typeof createdId>[0];
    expect(createdId(res('/notes/%E0%A4%A'), 'id')).toBeUndefined();
    expect(createdId(res('/notes/%'), 'id')).toBeUndefined();
    expect(createdId(res('/notes/n%2D7/'), 'id')).toBe('n-7');
  });

  it('bola --destructive: a created object whose Location is not valid percent-encoding ends the check with a warning, not a crash', async () => {
    const { base, doc } = await serve((req, res) => {
      req.resume();
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (callerOf(req) === undefined) return sendJson(res, 401, { error: 'unauthorized' });
      if (path === '/notes' && req.method === 'POST') {
        res.writeHead(201, { location: '/notes/%E0%A4%A' });
        return res.end();
      }
      if (path === '/notes') return sendJson(res, 200, { items: [] });
      sendJson(res, 404, { error: 'not found' });
    }, {
      openapi: '3.1.0',
      info: { title: 'notes', version: '1' },
      security: [{ b: [] }],
      components: { securitySchemes: { b: bearer } },
      paths: {
        '/notes': {
          get: { responses: { '200': { description: 'notes' } } },
          post: { requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['title'], properties: { title: { type: 'string' } } } } } }, responses: { '201': { description: 'created' } } },
        },
        '/notes/{id}': {
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          get: { responses: { '200': { description: 'a note' } } },
          put: { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { title: { type: 'string' } } } } } }, responses: { '200': { description: 'updated' } } },
          delete: { responses: { '204': { description: 'deleted' } } },
        },
      },
    });
    const { result, warnings } = await scanOf(base, { checks: [bolaCheck, massAssignmentCheck], doc, destructive: true, auth: ALICE, authB: BOB });
    expect(result.findings).toEqual([]);
    expect(result.stats.incompleteChecks).toEqual([]);
    expect(warnings).toContainEqual(expect.stringMatching(/bola: POST \/notes → 201 created an object but named no id/));
  });
});
