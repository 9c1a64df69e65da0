import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/gateway.js';
import { problemOf, send, type Response } from './helpers/http.js';

/**
 * Request validation against the pet store's OpenAPI document (examples/petstore/openapi.yaml):
 * each part of a request, valid and invalid, through a real gateway to a real upstream. A refused
 * request never reaches the upstream; an accepted one reaches it byte for byte.
 */

const SPEC = resolve(import.meta.dirname, '../examples/petstore/openapi.yaml');
let up: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(req.method === 'DELETE' ? 204 : 200, { 'content-type': 'application/json' });
    res.end(req.method === 'DELETE' ? undefined : '{"items":[]}');
  });
  gw = await startGateway({
    upstreams: { petstore: { targets: [{ url: up.url }], openapi: SPEC } },
    routes: [{ name: 'petstore', match: { path: '/v1/*' }, upstream: 'petstore', policies: { openapi: { response: { allowlist: false } } } }],
  });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

const json = (body: unknown, type = 'application/json') => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  // node:http frames a DELETE body only when told its length.
  return { headers: { 'content-type': type, 'content-length': String(Buffer.byteLength(text)) }, body: text };
};

/** Sends a request that must be refused: returns its problem, after checking nothing was forwarded. */
async function refused(method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}, status = 400): Promise<Record<string, unknown> & { errors?: { pointer: string; detail: string }[] }> {
  const before = up.requests.length;
  const res = await send(gw.url, path, { method, ...options });
  expect(res.status, res.text).toBe(status);
  expect(up.requests.length).toBe(before);
  return problemOf(res) as Record<string, unknown> & { errors?: { pointer: string; detail: string }[] };
}

function pointers(problem: { errors?: { pointer: string }[] }): string[] {
  return (problem.errors ?? []).map((e) => e.pointer).sort();
}

describe('openapi request validation (pet store)', () => {
  it('forwards a valid request untouched: the upstream receives exactly the bytes validated', async () => {
    // Odd spacing, key order and unicode: any re-serialization would show.
    const body = '{ "tags":[{"name":"sänger"}],   "name" : "Rex\\u00e9",\n"tag":null, "weightKg": 12.50 }';
    const before = up.requests.length;
    const res = await send(gw.url, '/v1/pets', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status, res.text).toBe(200);
    expect(up.requests.length).toBe(before + 1);
    const got = up.requests.at(-1)!;
    expect(got.url).toBe('/v1/pets');
    expect(got.body.equals(Buffer.from(body))).toBe(true);
  });

  it('accepts valid parameters in every location', async () => {
    const ok = [
      await send(gw.url, '/v1/pets?limit=10&status=sold&tags=a&tags=b', { headers: { 'x-request-id': '0b6f8c1e-3d2a-4f5b-9c7d-1e2f3a4b5c6d' } }),
      await send(gw.url, '/v1/pets/42'),
      await send(gw.url, '/v1/store/inventory', { headers: { cookie: 'locale=fr; other=1' } }),
      await send(gw.url, '/v1/store/orders/999999'),
      await send(gw.url, '/v1/users/alice_1'),
    ];
    for (const res of ok) expect(res.status, res.text).toBe(200);
    expect(up.requests.at(-5)!.url).toBe('/v1/pets?limit=10&status=sold&tags=a&tags=b');
  });

  it.each([
    ['path type', 'GET', '/v1/pets/abc', '/path/petId', 'must be integer'],
    ['path minimum', 'GET', '/v1/pets/0', '/path/petId', 'must be >= 1'],
    ['path exclusive maximum (3.0 boolean form)', 'GET', '/v1/store/orders/1000000', '/path/orderId', 'must be < 1000000'],
    ['path pattern', 'GET', '/v1/users/Al', '/path/username', 'must match pattern "^[a-z0-9_]{3,32}$"'],
    ['query maximum', 'GET', '/v1/pets?limit=500', '/query/limit', 'must be <= 100'],
    ['query int32 format', 'GET', '/v1/pets?limit=1.5', '/query/limit', 'must be integer'],
    ['query enum', 'GET', '/v1/pets?status=dead', '/query/status', 'must be one of "available", "pending", "sold"'],
    ['query undeclared', 'GET', '/v1/pets?admin=true', '/query/admin', 'is not a declared parameter'],
    ['query repeated scalar', 'GET', '/v1/pets?limit=1&limit=2', '/query/limit', 'is given more than once'],
    ['query empty value', 'GET', '/v1/pets?limit=', '/query/limit', 'must not be empty'],
    ['query array too long', 'GET', '/v1/pets?tags=a&tags=b&tags=c&tags=d&tags=e&tags=f', '/query/tags', 'must NOT have more than 5 items'],
  ])('refuses an invalid %s with its pointer', async (_name, method, path, pointer, detail) => {
    const problem = await refused(method, path);
    expect(problem.code).toBe('RMP_VALIDATION_FAILED');
    expect(problem.errors).toContainEqual({ pointer, detail });
  });

  it('refuses an invalid header and cookie with their pointers', async () => {
    const header = await refused('GET', '/v1/pets/1', { headers: { 'x-request-id': 'not-a-uuid' } });
    expect(header.errors).toEqual([{ pointer: '/header/x-request-id', detail: 'must match format "uuid"' }]);
    const cookie = await refused('GET', '/v1/store/inventory', { headers: { cookie: 'locale=xx' } });
    expect(cookie.errors).toEqual([{ pointer: '/cookie/locale', detail: 'must be one of "en", "fr", "de"' }]);
  });

  it.each([
    ['body type', { name: 5 }, '/body/name', 'must be string'],
    ['nested type in an array', { name: 'a', tags: [{ name: 7 }] }, '/body/tags/0/name', 'must be string'],
    ['body enum', { name: 'a', status: 'dead' }, '/body/status', 'must be one of "available", "pending", "sold"'],
    ['body format', { name: 'a', birthDate: '2020-13-45' }, '/body/birthDate', 'must match format "date"'],
    ['exclusive minimum (3.0 boolean form)', { name: 'a', weightKg: 0 }, '/body/weightKg', 'must be > 0'],
    ['missing required', { tag: 'x' }, '/body/name', 'is required'],
    ['extra field', { name: 'a', internalNotes: 'x' }, '/body/internalNotes', 'is not a declared property'],
    ['extra field deep in a recursive schema', { name: 'a', category: { name: 'c', parent: { name: 'p', parent: { name: 'q', evil: 1 } } } }, '/body/category/parent/parent/evil', 'is not a declared property'],
    ['readOnly field of a nested schema', { name: 'a', category: { id: 3, name: 'c' } }, '/body/category/id', 'is read-only'],
  ])('refuses an invalid %s with its pointer', async (_name, body, pointer, detail) => {
    const problem = await refused('POST', '/v1/pets', json(body));
    expect(problem.code).toBe('RMP_VALIDATION_FAILED');
    expect(problem.errors).toContainEqual({ pointer, detail });
  });

  it('mass assignment: undeclared and readOnly properties are refused and named', async () => {
    const problem = await refused('POST', '/v1/users', json({ username: 'mallory', email: 'm@example.com', password: 'correct horse battery', role: 'admin', isAdmin: true, id: 1 }));
    expect(pointers(problem)).toEqual(['/body/id', '/body/isAdmin', '/body/role']);
    expect(problem.errors).toContainEqual({ pointer: '/body/id', detail: 'is read-only' });
    expect(problem.errors).toContainEqual({ pointer: '/body/role', detail: 'is not a declared property' });
    expect(problem.detail).toMatch(/^The request does not match the API description; properties not accepted: (role|isAdmin|id), (role|isAdmin|id), (role|isAdmin|id)\.$/);
    // readOnly in an allOf part, while the other part's properties stay accepted.
    const put = await refused('PUT', '/v1/pets/1', json({ id: 2, name: 'rex', createdAt: '2026-01-01T00:00:00Z' }));
    expect(pointers(put)).toEqual(['/body/createdAt', '/body/id']);
    const ok = await send(gw.url, '/v1/pets/1', { method: 'PUT', ...json({ name: 'rex', status: 'sold', tags: [] }) });
    expect(ok.status, ok.text).toBe(200);
  });

  it('mass assignment applies to form bodies too, with their values coerced by the schema', async () => {
    const form = 'application/x-www-form-urlencoded';
    const problem = await refused('POST', '/v1/users', json('username=mallory&email=m%40example.com&password=correct+horse+battery&role=admin', form));
    expect(problem.errors).toEqual([{ pointer: '/body/role', detail: 'is not a declared property' }]);
    const res = await send(gw.url, '/v1/users', { method: 'POST', ...json('username=alice&email=a%40example.com&password=correct+horse+battery', form) });
    expect(res.status, res.text).toBe(200);
  });

  it('never quotes the value sent: a rejected password is not echoed', async () => {
    const secret = 'hunter2-Sup3rSecret';
    const res = await send(gw.url, '/v1/users', { method: 'POST', ...json({ username: 'alice', email: 'not-an-email', password: `${secret}${'x'.repeat(120)}` }) });
    expect(res.status).toBe(400);
    expect(res.text).not.toContain(secret);
    expect(res.text).not.toContain('not-an-email');
    expect(pointers(problemOf(res) as { errors?: { pointer: string }[] })).toEqual(['/body/email', '/body/password']);
  });

  it('refuses a body whose type the operation does not declare (415), and checks the declared +json type', async () => {
    const problem = await refused('POST', '/v1/pets', json('name=rex', 'application/x-www-form-urlencoded'), 415);
    expect(problem.code).toBe('RMP_UNSUPPORTED_MEDIA_TYPE');
    expect(problem.detail).toBe('This operation takes a body of type application/json.');
    expect(problem.errors).toEqual([{ pointer: '/header/content-type', detail: 'must be application/json' }]);
    const patchAsJson = await refused('PATCH', '/v1/users/alice', json({ firstName: 'A' }), 415);
    expect(patchAsJson.detail).toBe('This operation takes a body of type application/merge-patch+json.');
    const empty = await refused('PATCH', '/v1/users/alice', json({}, 'application/merge-patch+json'));
    expect(empty.errors).toEqual([{ pointer: '/body', detail: 'must NOT have fewer than 1 properties' }]);
    const ok = await send(gw.url, '/v1/users/alice', { method: 'PATCH', ...json({ firstName: 'A' }, 'application/merge-patch+json') });
    expect(ok.status, ok.text).toBe(200);
  });

  it('refuses a missing required body and a body on an operation that takes none', async () => {
    const missing = await refused('POST', '/v1/pets');
    expect(missing.errors).toEqual([{ pointer: '/body', detail: 'is required' }]);
    const unexpected = await refused('DELETE', '/v1/pets/1', json({ cascade: true }));
    expect(unexpected.errors).toEqual([{ pointer: '/body', detail: 'this operation takes no request body' }]);
  });

  it('strict: operations the document does not have are unreachable (404, 405 with Allow)', async () => {
    const unknown = await refused('GET', '/v1/admin/users', {}, 404);
    expect(unknown.code).toBe('RMP_ROUTE_NOT_FOUND');
    const before = up.requests.length;
    const res: Response = await send(gw.url, '/v1/pets', { method: 'PATCH', ...json({}) });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, POST');
    expect(problemOf(res).code).toBe('RMP_METHOD_NOT_ALLOWED');
    // Outside the document's server path (/v1) nothing is described either.
    expect((await send(gw.url, '/v1')).status).toBe(404);
    expect(up.requests.length).toBe(before);
  });

  it('records an input_validation_fail event with the pointers, never the values', async () => {
    await refused('POST', '/v1/pets', json({ name: 'a', isAdmin: 'secret-ish-value' }));
    const event = gw.logs.lines.findLast((l) => l.event === 'input_validation_fail:POST /pets') as { data?: Record<string, unknown> } | undefined;
    expect(event?.data).toMatchObject({ operation: 'POST /pets', count: 1, pointers: '/body/isAdmin' });
    expect(JSON.stringify(event)).not.toContain('secret-ish-value');
  });

  it('hostile inputs are refused with a problem, never a 500', async () => {
    const cases: [string, string, { headers?: Record<string, string>; body?: string }][] = [
      ['POST', '/v1/pets', json('{"name":"a","__proto__":{"isAdmin":true}}')],
      ['POST', '/v1/pets', json('[1,2,3]')],
      ['POST', '/v1/pets', json('"just a string"')],
      ['POST', '/v1/pets', json('null')],
      ['POST', '/v1/pets', json({ name: 'x'.repeat(101) })],
      ['POST', '/v1/pets', json({ name: '\u0000' , tags: 'not-an-array' })],
      ['GET', '/v1/pets?limit[$gt]=1', {}],
      ['GET', '/v1/pets?__proto__=1', {}],
      ['GET', '/v1/pets/%E2%82%AC', {}],
      ['GET', `/v1/pets?${'a=1&'.repeat(200)}`, {}],
    ];
    for (const [method, path, options] of cases) {
      const before = up.requests.length;
      const res = await send(gw.url, path, { method, ...options });
      expect(res.status, `${method} ${path}: ${res.text}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(up.requests.length).toBe(before);
      const problem = problemOf(res) as { errors?: unknown[] };
      if (problem.errors !== undefined) expect(problem.errors.length).toBeLessThanOrEqual(20);
    }
  });
});

describe('openapi documents on reload', () => {
  it('a changed document applies on reload; a broken one is refused with its position and the old one keeps serving', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'rampart-spec-'));
    const spec = join(dir, 'api.yaml');
    const doc = (max: number) => `openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /items:\n    get:\n      parameters:\n        - { name: limit, in: query, schema: { type: integer, maximum: ${max} } }\n      responses: { '200': { description: ok, content: { application/json: { schema: { type: object, additionalProperties: true } } } } }\n`;
    writeFileSync(spec, doc(10));
    const upstream = await startUpstream();
    const gateway = await startGateway({ upstreams: { api: { targets: [{ url: upstream.url }], openapi: spec } }, routes: [{ name: 'api', match: { path: '/items' }, upstream: 'api' }] });
    try {
      expect((await send(gateway.url, '/items?limit=20')).status).toBe(400);
      writeFileSync(spec, doc(50));
      expect(await gateway.runtime.reload()).toMatchObject({ ok: true });
      expect((await send(gateway.url, '/items?limit=20')).status).toBe(200);
      writeFileSync(spec, `${doc(50)}  /broken:\n    get:\n      parameters: [{ $ref: '#/nowhere' }]\n      responses: {}\n`);
      expect(await gateway.runtime.reload()).toMatchObject({ ok: false });
      const line = await gateway.logs.waitFor((l) => l.msg === 'config reload rejected; the previous config keeps serving');
      expect((line.errors as string[])[0]).toBe(`${spec}:11:28: paths["/broken"].get.parameters[0].$ref: policy 'openapi' of route 'api': the reference '#/nowhere' points at nothing in this document`);
      expect((await send(gateway.url, '/items?limit=20')).status).toBe(200);
      expect((await send(gateway.url, '/items?limit=60')).status).toBe(400);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});
