import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { main } from '../src/cli/main.js';
import { loadConfigFile } from '../src/config/load.js';
import { buildPipeline } from '../src/gateway/pipeline.js';
import { GatewayRuntime } from '../src/gateway/runtime.js';
import { createEvents } from '../src/observability/events.js';
import { createLogger } from '../src/observability/logger.js';
import { parseOpenApi } from '../src/openapi/document.js';
import { captureLogs, startUpstream, type TestUpstream } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';

/**
 * `rampart init --from-openapi` on the pet store document: the config it writes passes
 * `rampart validate`, and every operation of the document is served by a route that
 * authenticates it (unless the document says `security: []`) and validates it.
 */

const SPEC = resolve(import.meta.dirname, '../examples/petstore/openapi.yaml');
const dir = mkdtempSync(join(tmpdir(), 'rampart-init-'));
const output = join(dir, 'rampart.yaml');
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  return main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }).then((code) => ({ code, out, err }));
}

describe('rampart init --from-openapi', () => {
  it('writes a config that passes rampart validate and prints what it assumed', async () => {
    const result = await run(['init', '--from-openapi', SPEC, '-o', output]);
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.out[0]).toBe(`wrote ${output}: 9 routes for 12 operations, validated against ${SPEC} with the response allowlist on`);
    expect(result.out).toContain('assumed:');
    expect(result.out.some((l) => l.includes('the API is served at https://petstore.example.com'))).toBe(true);
    const validated = await run(['validate', '-c', output]);
    expect(validated.err.filter((l) => !l.startsWith('warning:'))).toEqual([]);
    expect(validated.code).toBe(0);
    // Never overwritten by accident.
    const again = await run(['init', '--from-openapi', SPEC, '-o', output]);
    expect(again.code).toBe(1);
    expect(again.err[0]).toContain('it exists (use --force to overwrite it)');
  });

  it('refuses a broken document with its position, and writes nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths: {}\n');
    const result = await run(['init', '--from-openapi', bad, '-o', join(dir, 'never.yaml')]);
    expect(result.code).not.toBe(0);
    expect(result.err.join('\n')).toContain(`${bad}:3:8: paths: the document has no operations`);
  });

  it('protects every operation of the document: authenticated (unless security: []), validated, allowlisted', () => {
    const loaded = loadConfigFile(output);
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    const pipeline = buildPipeline(loaded, { logger, events: createEvents(logger) });
    const doc = parseOpenApi(readFileSync(SPEC, 'utf8'), SPEC);
    try {
      for (const op of doc.operations) {
        const path = `/v1${op.template.replace(/\{(\w+)\}/g, '1')}`;
        const match = pipeline.router.find(op.method, op.template.includes('username') ? path.replace('/1', '/alice') : path, 'localhost');
        expect(match, `${op.method} ${op.template}`).not.toBeNull();
        const route = match!.route;
        expect(route.upstream?.name).toBe('api');
        const names = route.policies.map((p) => p.name);
        expect(names, `${op.method} ${op.template}`).toContain('openapi');
        const isPublic = op.securityDeclared && op.security.length === 0;
        if (isPublic) expect(names.some((n) => n === 'jwt' || n === 'api-key')).toBe(false);
        else expect(names.some((n) => n === 'jwt' || n === 'api-key'), `${op.method} ${op.template}`).toBe(true);
        if (op.security.every((r) => Object.values(r).flat().length > 0) && op.security.length > 0) expect(names).toContain('authorize');
      }
    } finally {
      void pipeline.close();
    }
  });

  it('the written config runs: unauthenticated calls get 401, the public operation is validated and allowlisted, nothing invalid reaches the API', async () => {
    const up: TestUpstream = await startUpstream((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{"id":1,"username":"alice","email":"a@example.com","password":"leaked","internalNotes":"x"}');
    });
    cleanups.push(() => up.close());
    const config = parse(readFileSync(output, 'utf8')) as { server: unknown; admin: unknown; upstreams: { api: { targets: unknown } }; routes: { allowInsecure?: boolean }[] };
    config.server = { listen: { host: '127.0.0.1', port: 0 } };
    config.admin = { enabled: false };
    config.upstreams.api.targets = [{ url: up.url }];
    for (const route of config.routes) route.allowInsecure = true;
    const file = join(dir, 'running.yaml');
    writeFileSync(file, stringify(config));
    const logs = captureLogs();
    const runtime = await GatewayRuntime.start({ configFile: file, logStream: logs.stream });
    cleanups.push(() => runtime.shutdown('test'));
    const denied = await send(runtime.url, '/v1/pets');
    expect(denied.status).toBe(401);
    expect(problemOf(denied).code).toBe('RMP_AUTH_REQUIRED');
    const mass = await send(runtime.url, '/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', email: 'a@example.com', password: 'correct horse battery', isAdmin: true }) });
    expect(mass.status).toBe(400);
    expect(problemOf(mass).code).toBe('RMP_VALIDATION_FAILED');
    expect(up.requests).toHaveLength(0);
    const ok = await send(runtime.url, '/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', email: 'a@example.com', password: 'correct horse battery' }) });
    expect(ok.status, ok.text).toBe(201);
    expect(up.requests).toHaveLength(1);
    // The answer keeps only what the document declares: no writeOnly password, no internalNotes.
    expect(ok.json()).toEqual({ id: 1, username: 'alice', email: 'a@example.com' });
  });
});
