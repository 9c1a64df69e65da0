import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { CONSOLE_HEADERS, registerConsole } from './console.js';

const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script><link rel="stylesheet" href="/assets/style-def456.css"></head><body></body></html>';

function builtConsole(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1);');
  writeFileSync(join(dir, 'assets', 'style-def456.css'), 'body{margin:0}');
  writeFileSync(join(dir, 'assets', 'index-abc123.js.map'), '{}');
  return dir;
}

/** Like the admin app: its own hook puts `no-store` on every answer first. */
async function adminLike(dir: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });
  registerConsole(app, { dir });
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.ready();
  return app;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
const start = async (dir: string) => {
  const app = await adminLike(dir);
  apps.push(app);
  return app;
};

describe('console files on the admin listener', () => {
  it('serves index.html at / with the strict CSP and no caching', async () => {
    const app = await start(builtConsole());
    const r = await app.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.body).toBe(INDEX);
    expect(r.headers['cache-control']).toBe('no-store');
    for (const [name, value] of Object.entries(CONSOLE_HEADERS)) expect(r.headers[name]).toBe(value);
    expect(r.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['cross-origin-opener-policy']).toBe('same-origin');
    // The query is not part of the path (the console routes with #/…).
    expect((await app.inject({ method: 'GET', url: '/?from=bookmark' })).body).toBe(INDEX);
  });

  it('serves hashed assets with their content type and a year of immutable caching, and answers 304 to their ETag', async () => {
    const app = await start(builtConsole());
    const js = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect([js.statusCode, js.headers['content-type'], js.body]).toEqual([200, 'text/javascript; charset=utf-8', 'console.log(1);']);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    expect(js.headers['content-security-policy']).toBe(CONSOLE_HEADERS['content-security-policy']);
    const css = await app.inject({ method: 'GET', url: '/assets/style-def456.css' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const icon = await app.inject({ method: 'GET', url: '/favicon.svg' });
    expect([icon.statusCode, icon.headers['content-type'], icon.headers['cache-control']]).toEqual([200, 'image/svg+xml', 'no-store']);

    const etag = js.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    const again = await app.inject({ method: 'GET', url: '/assets/index-abc123.js', headers: { 'if-none-match': `"other", ${etag}` } });
    expect([again.statusCode, again.body, again.headers.etag]).toEqual([304, '', etag]);
    const head = await app.inject({ method: 'HEAD', url: '/assets/index-abc123.js' });
    expect([head.statusCode, head.body]).toEqual([200, '']);
  });

  it('serves only the files of the build: no source map, no other path, no way out of the folder', async () => {
    const app = await start(builtConsole());
    for (const url of ['/assets/index-abc123.js.map', '/assets/nope.js', '/assets/../index.html', '/assets/%2e%2e/index.html', '/assets/..%2f..%2fpackage.json', '/index.html/', '/ASSETS/index-abc123.js', '/events']) {
      const r = await app.inject({ method: 'GET', url });
      expect([url, r.statusCode]).toEqual([url, 404]);
    }
    // Only reads.
    expect((await app.inject({ method: 'POST', url: '/' })).statusCode).toBe(404);
  });

  it('reads the files once, at start: a change on disk is not served until a restart', async () => {
    const dir = builtConsole();
    const app = await start(dir);
    writeFileSync(join(dir, 'index.html'), 'changed');
    writeFileSync(join(dir, 'assets', 'late-000.js'), 'late');
    expect((await app.inject({ method: 'GET', url: '/' })).body).toBe(INDEX);
    expect((await app.inject({ method: 'GET', url: '/assets/late-000.js' })).statusCode).toBe(404);
  });

  it('answers 503 RMP_ADMIN_CONSOLE_NOT_BUILT at / when the console is not built, and the rest of the listener works', async () => {
    const app = await start(join(tmpdir(), 'rampart-no-console-here'));
    const r = await app.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(CONSOLE_HEADERS['content-security-policy']);
    const body = r.json();
    expect(body).toMatchObject({ status: 503, code: 'RMP_ADMIN_CONSOLE_NOT_BUILT', instance: '/' });
    expect(body.detail).toContain('npm run build:console');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });
});
