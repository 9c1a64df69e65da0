import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { createHttpClient } from '../src/scanner/http.js';
import { runScan, ScanError } from '../src/scanner/runner.js';
import type { Check, Endpoint, Identity } from '../src/scanner/types.js';
import { startVulnerableApi, type VulnerableApi } from './fixtures/vulnerable/index.js';

/** Endpoints from --openapi (3.0 and 3.1, file or URL), the crawl, and the identities (--auth, --login). */

let api: VulnerableApi | undefined;
let dir: string | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const quiet = { debug: () => {}, warn: () => {} };

/** A check that only records what the runner gave it. */
function spy(): { check: Check; seen: { endpoints: readonly Endpoint[]; identities: { a?: Identity; b?: Identity } } } {
  const seen = { endpoints: [] as readonly Endpoint[], identities: {} };
  return {
    seen,
    check: {
      id: 'spy',
      title: 'spy',
      owasp: 'API8:2023',
      description: 'records its context',
      run: async (ctx) => {
        seen.endpoints = ctx.endpoints;
        seen.identities = ctx.identities;
        return [];
      },
    },
  };
}

async function runWith(extra: Partial<Parameters<typeof runScan>[0]>) {
  const http = createHttpClient({ rate: 1000, budget: 200, timeoutMs: 5000, maxBodyBytes: 1 << 20, insecure: false, logger: quiet, verbose: false });
  const s = spy();
  try {
    const result = await runScan({ target: new URL(api!.url), http, logger: quiet, checks: [s.check], ...extra });
    return { result, seen: s.seen, sent: http.sent };
  } finally {
    await http.close();
  }
}

function writeDoc(doc: unknown, name: string, yaml = false): string {
  dir ??= mkdtempSync(join(tmpdir(), 'rampart-scan-openapi-'));
  const file = join(dir, name);
  writeFileSync(file, yaml ? stringify(doc) : JSON.stringify(doc, null, 2));
  return file;
}

function operationsOf(doc: Record<string, unknown>): string[] {
  const paths = doc.paths as Record<string, Record<string, unknown>>;
  const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  return Object.entries(paths).flatMap(([path, item]) => Object.keys(item).filter((m) => methods.includes(m)).map((m) => `${m.toUpperCase()} ${path}`)).sort();
}

describe('--openapi', () => {
  it('every operation of a 3.1 document (YAML file) becomes an endpoint, with what it says about credentials', async () => {
    api = await startVulnerableApi();
    const file = writeDoc(api.openapi, 'api.yaml', true);
    const { seen, result } = await runWith({ openapi: file });
    expect(seen.endpoints.map((e) => `${e.method} ${e.template}`).sort()).toEqual(operationsOf(api.openapi));
    expect(result.stats.endpoints).toBe(seen.endpoints.length);
    const me = seen.endpoints.find((e) => e.operationId === 'me')!;
    expect(me).toMatchObject({ from: 'openapi', requiresAuth: true, url: new URL('/api/me', api.url) });
    expect(me.source).toMatchObject({ uri: file });
    expect(me.source!.line).toBeGreaterThan(1);
    expect(readFileSync(file, 'utf8').split('\n')[me.source!.line - 1]).toMatch(/^\s+get:/);
    const login = seen.endpoints.find((e) => e.operationId === 'login')!;
    expect(login).toMatchObject({ method: 'POST', requiresAuth: false, requestBody: { mediaType: 'application/json', required: true } });
    expect(Object.keys((login.requestBody!.schema!.properties as object) ?? {})).toEqual(['username', 'password']);
    // The response schema's $ref is inlined (checks read properties, readOnly…).
    expect(me.responseSchema).toMatchObject({ properties: { role: { readOnly: true } } });
  });

  it('a 3.0 document fetched by URL; path parameters filled from example, type and format; required query parameters added', async () => {
    api = await startVulnerableApi();
    const doc = {
      openapi: '3.0.3',
      info: { title: 't', version: '1' },
      servers: [{ url: '/v2' }],
      paths: {
        '/things/{thingId}': {
          get: {
            parameters: [
              { name: 'thingId', in: 'path', required: true, schema: { type: 'integer' } },
              { name: 'q', in: 'query', required: true, schema: { type: 'string', example: 'needle' } },
              { name: 'page', in: 'query', schema: { type: 'integer' } },
            ],
            responses: { '200': { description: 'ok' } },
          },
        },
        '/docs/{docId}': { get: { security: [{}, { bearerAuth: [] }], parameters: [{ name: 'docId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }], responses: { '200': { description: 'ok' } } } },
      },
    };
    // Served by a second fixture: the document is fetched through the scan's client (budget, --ca).
    const served = await startVulnerableApi();
    try {
      const fileUrl = writeDoc(doc, 'v30.json');
      const { seen } = await runWith({ openapi: fileUrl });
      const thing = seen.endpoints.find((e) => e.template === '/things/{thingId}')!;
      expect(thing.url.pathname + thing.url.search).toBe('/v2/things/1?q=needle');
      expect(thing.requiresAuth).toBeUndefined(); // the document says nothing about security
      const d = seen.endpoints.find((e) => e.template === '/docs/{docId}')!;
      expect(d.url.pathname).toBe('/v2/docs/00000000-0000-4000-8000-000000000001');
      expect(d.requiresAuth).toBe(false); // `{}` is an alternative: anonymous is allowed
      const byUrl = await runWith({ openapi: `${served.url}openapi.json` });
      expect(byUrl.seen.endpoints.length).toBe(operationsOf(served.openapi).length);
    } finally {
      await served.close();
    }
  });

  it('zero operations, Swagger 2 or an unreadable file: exit 2 naming the file, line and column', async () => {
    api = await startVulnerableApi();
    const empty = writeDoc({ openapi: '3.1.0', info: { title: 't', version: '1' }, paths: {} }, 'empty.yaml', true);
    await expect(runWith({ openapi: empty })).rejects.toThrow(ScanError);
    const err: string[] = [];
    const code = await main(['scan', api.url, '--openapi', empty], { out: () => {}, err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(new RegExp(`${empty.replaceAll('/', '\\/')}:\\d+:\\d+.*no operations`));
    const swagger = writeDoc({ swagger: '2.0', info: { title: 't', version: '1' }, paths: {} }, 'swagger.json');
    expect(await main(['scan', api.url, '--openapi', swagger], { out: () => {}, err: (l) => err.push(l) })).toBe(2);
    expect(err.at(-1)).toMatch(/Swagger 2\.0 is not supported/);
    expect(await main(['scan', api.url, '--openapi', join(dir!, 'missing.yaml')], { out: () => {}, err: (l) => err.push(l) })).toBe(2);
    expect(err.at(-1)).toMatch(/cannot read it \(no such file\)/);
  });

  it('SARIF: logicalLocations name METHOD + template, physicalLocation the operation in the document', async () => {
    api = await startVulnerableApi({ corsReflect: true });
    const file = writeDoc(api.openapi, 'api.json');
    const out = mkdtempSync(join(tmpdir(), 'rampart-scan-sarif-'));
    try {
      const code = await main(['scan', api.url, '--openapi', file, '--format', 'sarif', '--out', out, '--rate', '1000'], { out: () => {}, err: () => {} });
      expect(code).toBe(1);
      const sarif = JSON.parse(readFileSync(join(out, 'rampart-scan.sarif'), 'utf8')) as { runs: { results: { ruleId: string; locations: { logicalLocations: { name: string }[]; physicalLocation?: { artifactLocation: { uri: string }; region: { startLine: number } } }[] }[] }[] };
      const cors = sarif.runs[0]!.results.find((r) => r.ruleId === 'cors')!;
      const loc = cors.locations[0]!;
      expect(loc.logicalLocations[0]!.name).toMatch(/^GET \/\S*$/);
      if (loc.physicalLocation !== undefined) {
        expect(loc.physicalLocation.artifactLocation.uri).toMatch(/api\.json$/);
        expect(loc.physicalLocation.region.startLine).toBeGreaterThan(1);
      }
      expect(sarif.runs[0]!.results.some((r) => r.locations[0]!.physicalLocation !== undefined)).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('crawl (no document)', () => {
  it('follows links in HTML and JSON answers, same origin only, and suggests --openapi when it meets a document', async () => {
    api = await startVulnerableApi();
    const warnings: string[] = [];
    const http = createHttpClient({ rate: 1000, budget: 200, timeoutMs: 5000, maxBodyBytes: 1 << 20, insecure: false, logger: quiet, verbose: false });
    try {
      await runScan({ target: new URL(api.url), http, logger: { debug: () => {}, warn: (m) => warnings.push(m) }, checks: [] });
    } finally {
      await http.close();
    }
    const paths = api.requests.map((r) => r.path);
    expect(paths).toContain('/api/notes'); // a link in GET /api's JSON
    expect(new Set(paths).size).toBe(paths.length); // each URL once
    expect(warnings.some((w) => /openapi\.json is an OpenAPI document: pass --openapi/.test(w))).toBe(true);
    expect(api.requests.every((r) => r.method === 'GET')).toBe(true);
  });
});

describe('identities', () => {
  it('--auth gives caller A as a header (a bearer token is kept for the JWT checks); --auth-b caller B', async () => {
    api = await startVulnerableApi();
    const token = await api.auth.tokenFor('alice');
    const { seen } = await runWith({ auth: `Authorization: Bearer ${token}`, authB: 'X-API-Key: k-bob' });
    expect(seen.identities.a).toMatchObject({ label: 'A', headers: { authorization: `Bearer ${token}` }, token });
    expect(seen.identities.b).toMatchObject({ label: 'B', headers: { 'x-api-key': 'k-bob' } });
    await expect(runWith({ auth: 'Bearer abc' })).rejects.toThrow(/--auth expects a header, 'Name: value'/);
  });

  it('--login logs in both callers with the field the document declares; a refused login ends the scan (exit 2)', async () => {
    api = await startVulnerableApi();
    const file = writeDoc(api.openapi, 'api.json');
    const { seen } = await runWith({ openapi: file, login: { path: '/api/login', user: 'alice', password: 'alice-password-1', userB: 'bob', passwordB: 'bob-password-1' } });
    expect(seen.identities.a?.login).toEqual({ path: '/api/login', user: 'alice', userField: 'username' });
    expect(await api.auth.verify(seen.identities.a!.token!)).toMatchObject({ sub: 'u-alice' });
    expect(await api.auth.verify(seen.identities.b!.token!)).toMatchObject({ sub: 'u-bob' });
    const err: string[] = [];
    const code = await main(['scan', api.url, '--openapi', file, '--login', '/api/login', '--user', 'alice', '--password', 'wrong'], { out: () => {}, err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/--login \/api\/login as alice: answered 401/);
    expect(await main(['scan', api.url, '--login', '/api/login', '--user', 'alice'], { out: () => {}, err: (l) => err.push(l) })).toBe(2);
    expect(err.at(-1)).toMatch(/--login needs --user and --password/);
  });
});
