import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { transportCheck } from '../src/scanner/checks/transport.js';
import { BudgetExhaustedError, createHttpClient, type ScanHttpClient } from '../src/scanner/http.js';
import { runScan, type ScanResult } from '../src/scanner/runner.js';
import { severityRank, type ScanContext } from '../src/scanner/types.js';
import { closeAfterEach } from './helpers/gateway.js';
import { startVulnerableApi, type VulnerableApi, type Vulnerabilities } from './fixtures/vulnerable/index.js';
import { loopbackCertificate } from './fixtures/vulnerable/transport.js';

/** The transport check against the vulnerable fixture over HTTPS, plain TLS servers and Rampart itself (127.0.0.1 only). */

const use = closeAfterEach(afterEach);
let api: VulnerableApi | undefined;
const servers: NetServer[] = [];
let dir: string | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
  for (const s of servers.splice(0)) {
    s.close();
    await once(s, 'close');
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

let pems: { cert: string; key: string };
beforeAll(async () => {
  pems = await loopbackCertificate();
});

const quiet = { debug: () => {}, warn: () => {} };

function client(options: { ca?: string | undefined; insecure?: boolean; budget?: number; log?: string[] } = {}): ScanHttpClient {
  const log = options.log;
  const logger = log === undefined ? quiet : { debug: (m: string) => log.push(m), warn: (m: string) => log.push(`warning: ${m}`) };
  return createHttpClient({ rate: 1000, budget: options.budget ?? 500, timeoutMs: 5000, maxBodyBytes: 65536, ca: options.ca, insecure: options.insecure ?? false, logger, verbose: log !== undefined });
}

/** A full scan of the HTTPS fixture (with its plain listener as --http-url), trusting its certificate. */
async function scanHttps(switches: Partial<Vulnerabilities>, options: { insecure?: boolean; log?: string[] } = {}): Promise<ScanResult> {
  api = await startVulnerableApi(switches, pems);
  const http = client({ ca: options.insecure === true ? undefined : api.cert, insecure: options.insecure, log: options.log });
  try {
    return await runScan({ target: new URL(api.url), http, logger: quiet, httpUrl: new URL(api.httpUrl!) });
  } finally {
    await http.close();
  }
}

/** The check alone, on a target the crawl could not reach (a TLS-only server): no observed answers. */
async function runCheck(target: string, http: ScanHttpClient): Promise<{ findings: Awaited<ReturnType<typeof transportCheck.run>>; skipped: string[] }> {
  const skipped: string[] = [];
  const ctx: ScanContext = { target: new URL(target), options: { safe: true, destructive: false }, http, logger: quiet, endpoints: [], observed: [], identities: {}, skip: (_c, r) => skipped.push(r) };
  return { findings: await transportCheck.run(ctx), skipped };
}

/** A raw TLS server on 127.0.0.1:0 that counts the TCP connections it gets. */
async function listen<T extends NetServer>(server: T): Promise<{ server: T; port: number; connections: () => number }> {
  let connections = 0;
  server.on('connection', () => connections++);
  server.on('tlsClientError', () => {}); // declined and abandoned handshakes are the point here
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

const transport = (r: ScanResult) => r.findings.filter((f) => f.check === 'transport');

describe('transport: the secure variant', () => {
  it('HTTPS with TLS 1.2+, AEAD suites, a valid certificate, a year of HSTS and plain HTTP redirecting: no transport finding at all, nothing of medium or higher', async () => {
    const log: string[] = [];
    const result = await scanHttps({}, { log });
    expect(transport(result)).toEqual([]);
    expect(result.findings.filter((f) => severityRank(f.severity) >= severityRank('medium'))).toEqual([]);
    expect(result.stats.skipped.filter((s) => s.check === 'transport')).toEqual([]);
    expect(result.stats.incompleteChecks).toEqual([]);
    // Every probe counts against the budget: the HTTP requests the fixture saw plus the handshakes.
    const handshakes = log.filter((l) => l.startsWith('→ TLS')).length;
    expect(handshakes).toBe(6);
    expect(result.stats.requests).toBe(api!.requests.length + handshakes);
    expect(api!.requests.filter((r) => r.path === '/').length).toBeGreaterThanOrEqual(2); // the crawl's GET / and the plain-HTTP one
  });
});

describe('transport: each switch → its finding', () => {
  const cases: { switch: keyof Vulnerabilities; id: string; severity: string; detail: RegExp; evidence: RegExp; insecure?: boolean }[] = [
    { switch: 'noRedirect', id: 'transport.no-redirect', severity: 'medium', detail: /GET \/ → 200 over plain HTTP/, evidence: /^HTTP\/1\.1 200/ },
    { switch: 'tls10', id: 'transport.tls-version', severity: 'high', detail: /TLSv1 with ECDHE-ECDSA-AES(128|256)-SHA; TLSv1\.1 with /, evidence: /^ServerHello: TLSv1, ECDHE-ECDSA-AES\d+-SHA \(TLS_ECDHE_ECDSA_WITH_AES_\d+_CBC_SHA\)/ },
    { switch: 'tls11', id: 'transport.tls-version', severity: 'medium', detail: /^Handshakes offering only an old version succeeded: TLSv1\.1 with ECDHE-ECDSA-AES\d+-SHA\./, evidence: /^ServerHello: TLSv1\.1, / },
    { switch: 'weakCiphers', id: 'transport.weak-cipher', severity: 'high', detail: /the server picked TLS_ECDH(E_ECDSA_WITH_NULL|_anon_WITH_\w+)_SHA \(TLSv1\.2\)/, evidence: /^ServerHello: TLSv1\.2, TLS_ECDH\w+ \(TLS_ECDH\w+ \(0xc0[0-9a-f]{2}\)\)/ },
    { switch: 'cbcCiphers', id: 'transport.legacy-cipher', severity: 'low', detail: /picked TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA \(TLSv1\.2\)/, evidence: /^ServerHello: TLSv1\.2, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA/ },
    { switch: 'expiredCert', id: 'transport.cert-expired', severity: 'high', detail: /was valid until \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT, 1 day\(s\) ago/, evidence: /certificate: subject CN=127\.0\.0\.1; .*valid from .* to /, insecure: true },
    { switch: 'expiringCert', id: 'transport.cert-expiring', severity: 'medium', detail: /is valid until \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT, in (9|10) day\(s\)/, evidence: /certificate: .*key EC prime256v1/ },
    { switch: 'weakKey', id: 'transport.cert-weak-key', severity: 'medium', detail: /A 1024-bit RSA key/, evidence: /key RSA 1024 bits/ },
    { switch: 'hstsShort', id: 'transport.hsts-short', severity: 'low', detail: /Strict-Transport-Security: max-age=60 on GET \/ \(200\)/, evidence: /strict-transport-security: max-age=60/ },
    { switch: 'missingHeaders', id: 'transport.hsts-missing', severity: 'medium', detail: /^No Strict-Transport-Security header on GET \/ \(200\), .* and \d+ more/, evidence: /^HTTP\/1\.1 200/ },
  ];
  for (const c of cases) {
    it(`${c.switch} → ${c.id} (${c.severity})`, async () => {
      const result = await scanHttps({ [c.switch]: true }, { insecure: c.insecure });
      const found = result.findings.filter((f) => f.id === c.id);
      expect(found, JSON.stringify(result.findings.map((f) => f.id))).toHaveLength(1);
      const f = found[0]!;
      expect(f).toMatchObject({ check: 'transport', severity: c.severity, owasp: 'API8:2023' });
      expect(f.detail).toMatch(c.detail);
      expect(f.evidence.response).toMatch(c.evidence);
      expect(f.remediation.length).toBeGreaterThan(20);
      // No other transport finding of medium or higher: each switch shows only its own problem.
      const others = transport(result).filter((x) => x.id !== c.id && severityRank(x.severity) >= severityRank('medium'));
      expect(others).toEqual([]);
    });
  }

  it('a TLS finding names the TLS exchange as its location and evidence (no HTTP request)', async () => {
    const result = await scanHttps({ tls10: true });
    const f = result.findings.find((x) => x.id === 'transport.tls-version')!;
    expect(f.location).toEqual({ method: 'TLS', url: api!.url, host: new URL(api!.url).host });
    expect(f.evidence.request).toBe(`TLS ClientHello to ${new URL(api!.url).host}\nversions TLSv1 only, every suite (ALL:@SECLEVEL=0)`);
  });
});

describe('transport: plain HTTP', () => {
  it('an http:// target with nothing speaking TLS on port 443 → transport.no-https (high)', async () => {
    // The decision rests on 127.0.0.1:443 refusing connections, as it does on a test machine.
    const state = await new Promise<string>((resolve) => {
      const probe = netConnect({ host: '127.0.0.1', port: 443 });
      probe.once('connect', () => (probe.destroy(), resolve('open')));
      probe.once('error', () => resolve('closed'));
    });
    expect(state, 'something listens on 127.0.0.1:443; this test needs it closed').toBe('closed');

    api = await startVulnerableApi({});
    const http = client();
    const result = await runScan({ target: new URL(api.url), http, logger: quiet });
    await http.close();
    expect(transport(result)).toHaveLength(1);
    expect(transport(result)[0]).toMatchObject({ id: 'transport.no-https', severity: 'high', confidence: 'medium', owasp: 'API8:2023', location: { method: 'GET', url: api.url } });
    expect(transport(result)[0]!.detail).toMatch(/^GET \/ → 200 over plain HTTP, with no redirect to HTTPS, and 127\.0\.0\.1:443 does not speak TLS \(ECONNREFUSED/);
  });

  it('an http:// target that redirects to HTTPS on the same host: its TLS and HSTS are judged there (secure: nothing; TLS 1.0: found)', async () => {
    for (const [switches, ids] of [[{}, []], [{ tls10: true }, ['transport.legacy-cipher', 'transport.tls-version']]] as const) {
      api = await startVulnerableApi(switches, pems);
      const http = client({ ca: api.cert });
      const result = await runScan({ target: new URL(api.httpUrl!), http, logger: quiet });
      await http.close();
      expect(transport(result).map((f) => f.id).sort()).toEqual(ids);
      expect(result.stats.skipped.filter((s) => s.check === 'transport')).toEqual([]);
      for (const f of transport(result)) expect(f.location.url).toBe(api.url); // judged on the HTTPS origin the redirect named
      await api.close();
      api = undefined;
    }
  });

  it('an https:// target not on 443 without --http-url: the redirect is not judged, and the report says why', async () => {
    api = await startVulnerableApi({ noRedirect: true }, pems);
    const http = client({ ca: api.cert });
    const result = await runScan({ target: new URL(api.url), http, logger: quiet });
    await http.close();
    expect(transport(result)).toEqual([]);
    expect(result.stats.skipped.filter((s) => s.check === 'transport')).toEqual([{ check: 'transport', reason: expect.stringMatching(/not on port 443.*pass --http-url URL/) }]);
  });

  it('--http-url that does not answer: no finding (a connection that cannot be made decides nothing), said in the stats', async () => {
    const closed = await listen(createNetServer());
    const port = closed.port;
    closed.server.close();
    servers.splice(servers.indexOf(closed.server), 1);
    await once(closed.server, 'close');
    api = await startVulnerableApi({}, pems);
    const http = client({ ca: api.cert });
    const result = await runScan({ target: new URL(api.url), http, logger: quiet, httpUrl: new URL(`http://127.0.0.1:${port}/`) });
    await http.close();
    expect(transport(result)).toEqual([]);
    expect(result.stats.skipped.filter((s) => s.check === 'transport')).toEqual([{ check: 'transport', reason: expect.stringMatching(/--http-url http:\/\/127\.0\.0\.1:\d+\/ does not answer \(ECONNREFUSED\)/) }]);
  });
});

describe('transport: handshakes', () => {
  it('positive control: a TLS 1.0-only server is flagged (the probe really speaks TLS 1.0), and every connection it opens is counted', async () => {
    const only10 = await listen(createTlsServer({ ...pems, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' }, (s) => s.end()));
    const http = client();
    const { findings, skipped } = await runCheck(`https://127.0.0.1:${only10.port}/`, http);
    expect(skipped.filter((s) => /TLS 1\.0 not judged/.test(s))).toEqual([]);
    const f = findings.find((x) => x.id === 'transport.tls-version');
    expect(f, JSON.stringify({ findings, skipped })).toBeDefined();
    expect(f).toMatchObject({ severity: 'high', confidence: 'high' });
    expect(f!.detail).toMatch(/succeeded: TLSv1 with ECDHE-ECDSA-AES128-SHA\./);
    expect(f!.evidence.response).toMatch(/^ServerHello: TLSv1, ECDHE-ECDSA-AES128-SHA \(TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\)\ncertificate: subject CN=127\.0\.0\.1/);
    // Its TLS 1.0 answer to the TLS 1.2 hellos is the version finding's business, not a cipher finding.
    expect(findings.map((x) => x.id)).toEqual(['transport.tls-version']);
    // HSTS needs an HTTPS answer, and the HTTP client (TLS 1.2+, certificate checked) gets none here.
    expect(skipped).toEqual([expect.stringMatching(/^plain HTTP not judged: .*pass --http-url/), expect.stringMatching(/^HSTS not judged: GET https:\/\/127\.0\.0\.1:\d+\/ failed \(ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION\)$/)]);
    // One connection per probe (the GET for HSTS included), each taken from the budget first.
    expect(only10.connections()).toBe(http.sent);
    expect(http.sent).toBeLessThanOrEqual(8);
    await http.close();
  });

  it('the probes stop at the budget: no connection without a slot', async () => {
    const only10 = await listen(createTlsServer({ ...pems, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' }, (s) => s.end()));
    const http = client({ budget: 2 });
    await expect(runCheck(`https://127.0.0.1:${only10.port}/`, http)).rejects.toBeInstanceOf(BudgetExhaustedError);
    expect(http.sent).toBe(2);
    expect(only10.connections()).toBe(2);
    await http.close();
  });

  it('a declined or abandoned handshake is never a finding: servers that reset, speak plain HTTP, or decline everything', async () => {
    const reset = await listen(createNetServer((s: Socket) => s.destroy()));
    const plainHttp = await listen(createNetServer((s: Socket) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n'))));
    const declines = await listen(createTlsServer({ ...pems, minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' }, (s) => s.end()));
    for (const { port } of [reset, plainHttp, declines]) {
      const http = client();
      const { findings, skipped } = await runCheck(`https://127.0.0.1:${port}/`, http);
      await http.close();
      // TLS 1.3 only: declines TLS 1.0, 1.1 and every TLS 1.2 hello; the rest cannot even be judged.
      expect(findings.filter((f) => f.id !== 'transport.hsts-missing'), `port ${port}: ${JSON.stringify(findings)}`).toEqual([]);
      expect(skipped.length).toBeGreaterThan(0);
    }
  });

  it('suites this Node cannot offer (3DES, RC4) are still found: a server whose ServerHello picks TLS_RSA_WITH_3DES_EDE_CBC_SHA → transport.weak-cipher (medium)', async () => {
    // Answers a ClientHello that offers 0x000a with a ServerHello picking it, anything else with a handshake_failure alert.
    const des = await listen(
      createNetServer((s: Socket) => {
        s.once('data', (hello: Buffer) => {
          const sessionAt = 5 + 4 + 2 + 32;
          const suitesAt = sessionAt + 1 + hello[sessionAt]!;
          const suites = hello.subarray(suitesAt + 2, suitesAt + 2 + hello.readUInt16BE(suitesAt));
          const offered = Array.from({ length: suites.length / 2 }, (_, i) => suites.readUInt16BE(i * 2));
          if (!offered.includes(0x000a)) return s.end(Buffer.from([21, 3, 3, 0, 2, 2, 40]));
          const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0, 0x00, 0x0a, 0])]);
          const handshake = Buffer.concat([Buffer.from([2, 0, 0, body.length]), body]);
          s.end(Buffer.concat([Buffer.from([22, 3, 3, 0, handshake.length]), handshake]));
        });
      }),
    );
    const http = client();
    const { findings } = await runCheck(`https://127.0.0.1:${des.port}/`, http);
    await http.close();
    const f = findings.find((x) => x.id === 'transport.weak-cipher');
    expect(f, JSON.stringify(findings)).toMatchObject({ severity: 'medium', detail: expect.stringMatching(/picked TLS_RSA_WITH_3DES_EDE_CBC_SHA \(TLSv1\.2\).*Sweet32/) });
    expect(f!.evidence.response).toBe('ServerHello: TLSv1.2, TLS_RSA_WITH_3DES_EDE_CBC_SHA (TLS_RSA_WITH_3DES_EDE_CBC_SHA (0x000a))');
  });
});

describe('transport: Rampart and the CLI', () => {
  it("Rampart's defaults (server.tls and the redirecting server.http) give no transport finding, scanned by either address", async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-scan-'));
    writeFileSync(join(dir, 'api.crt'), pems.cert);
    writeFileSync(join(dir, 'api.key'), pems.key, { mode: 0o600 });
    api = await startVulnerableApi({});
    const gw = await use.gateway({
      server: { tls: { cert: join(dir, 'api.crt'), key: join(dir, 'api.key') }, http: { listen: { host: '127.0.0.1', port: 0 } } },
      upstreams: { app: { targets: [{ url: api.url.replace(/\/$/, '') }] } },
      routes: [{ name: 'all', match: { path: '/*' }, upstream: 'app' }],
    });
    for (const [target, httpUrl] of [[`${gw.url}/`, `${gw.plainUrl!}/`], [`${gw.plainUrl!}/`, undefined]] as const) {
      const log: string[] = [];
      const http = client({ ca: pems.cert, log });
      const result = await runScan({ target: new URL(target), http, logger: quiet, httpUrl: httpUrl === undefined ? undefined : new URL(httpUrl) });
      await http.close();
      expect(transport(result), target).toEqual([]);
      expect(result.stats.skipped.filter((s) => s.check === 'transport')).toEqual([]);
      expect(log.filter((l) => l.startsWith('→ TLS')).length).toBe(6); // the TLS side was judged both times
    }
  });

  it('--http-url is passed through (and must be http://)', async () => {
    api = await startVulnerableApi({ noRedirect: true }, pems);
    dir = mkdtempSync(join(tmpdir(), 'rampart-scan-'));
    writeFileSync(join(dir, 'ca.pem'), api.cert!);
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['scan', api.url, '--rate', '1000', '--ca', join(dir, 'ca.pem'), '--http-url', api.httpUrl!, '--format', 'json'], { out: (l) => out.push(l), err: (l) => err.push(l) });
    expect(code, err.join('\n')).toBe(0); // medium, under the default --fail-on high
    expect((JSON.parse(out.join('\n')) as { findings: { id: string }[] }).findings.map((f) => f.id)).toEqual(['transport.no-redirect']);

    const bad: string[] = [];
    expect(await main(['scan', api.url, '--http-url', api.url], { out: () => {}, err: (l) => bad.push(l) })).toBe(2);
    expect(bad.join('\n')).toMatch(/--http-url must be an http:\/\/ URL/);
  });
});
