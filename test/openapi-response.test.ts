import { resolve } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';

/**
 * The acceptance scenario of response protection on the pet store: an upstream that returns a
 * password, an undeclared `internalNotes`, a card number and a stack-trace 500. The client sees
 * none of them, and each removal is recorded as an event.
 */

const SPEC = resolve(import.meta.dirname, '../examples/petstore/openapi.yaml');
const STACK = 'Error: duplicate key value violates unique constraint "users_pkey"\n    at Query.run (/srv/app/node_modules/pg/lib/query.js:42:11)\n    SELECT * FROM users WHERE id = 1';

const answers: Record<string, (res: ServerResponse) => void> = {
  'GET /v1/pets/1': (res) =>
    json(res, 200, {
      id: 1,
      name: 'Rex',
      tag: 'dog',
      password: 'hunter2',
      internalNotes: 'bites the vet; owner owes 300',
      category: { id: 2, name: 'Dogs', margin: 0.4, parent: { id: 1, name: 'Animals', supplierId: 'sup-9' } },
      tags: [{ name: 'good', weight: 3 }],
    }),
  'GET /v1/users/alice': (res) => json(res, 200, { id: 7, username: 'alice', email: 'alice@example.com', password: 'correct horse battery', phone: '4111 1111 1111 1111', passwordHash: '$argon2id$v=19$...' }),
  'GET /v1/pets/2': (res) => {
    res.writeHead(500, { 'content-type': 'text/plain', 'x-powered-by': 'Express', 'x-debug-sql': 'SELECT * FROM pets' });
    res.end(STACK);
  },
  'GET /v1/pets/3': (res) => json(res, 202, { id: 3, name: 'Queued', internalNotes: 'x' }),
  'GET /v1/store/inventory': (res) => json(res, 200, { available: 3, sold: 2, secret: 'owner-token' }),
  'GET /v1/pets/4': (res) => json(res, 404, { code: 404, message: 'no such pet', debug: 'internal detail' }),
  'GET /v1/pets': (res) => json(res, 200, { items: [{ id: 5, name: 'Tom', ssn: '078-05-1120', owner: { email: 'x@y.z' } }], next: null, cursorSecret: 'abc' }),
};

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

let up: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const answer = answers[`${req.method} ${req.url}`];
    if (answer === undefined) json(res, 599, { unexpected: req.url });
    else answer(res);
  });
  gw = await startGateway({
    upstreams: { petstore: { targets: [{ url: up.url }], openapi: SPEC } },
    routes: [
      { name: 'petstore', match: { path: '/v1/*' }, upstream: 'petstore' },
      { name: 'petstore-unfiltered', match: { path: '/raw/v1/*' }, upstream: 'petstore', stripPrefix: '/raw', policies: { openapi: { response: { allowlist: false } }, redact: false, detect: false } },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await up?.close();
});

const events = (type: string) => gw.logs.lines.filter((l) => typeof l.event === 'string' && l.event.startsWith(type)) as { data?: Record<string, unknown>; route?: string }[];

describe('openapi response allowlist with the response filters (pet store)', () => {
  it('removes the password, undeclared internalNotes and nested undeclared fields; events name the paths, never the values', async () => {
    const res = await send(gw.url, '/v1/pets/1');
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toEqual({ id: 1, name: 'Rex', tag: 'dog', category: { id: 2, name: 'Dogs', parent: { id: 1, name: 'Animals' } }, tags: [{ name: 'good' }] });
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
    for (const leaked of ['hunter2', 'bites the vet', 'margin', 'sup-9', 'weight']) expect(res.text).not.toContain(leaked);
    const allowlisted = events('response_redacted').find((e) => e.data?.filter === 'allowlist' && e.data.operation === 'GET /pets/{petId}');
    // redact (respond phase) runs first and takes the password; the allowlist takes the rest.
    expect(allowlisted?.data).toMatchObject({ status: 200, count: 4 });
    expect(String(allowlisted?.data?.paths).split(', ').sort()).toEqual(['$.category.margin', '$.category.parent.supplierId', '$.internalNotes', '$.tags[0].weight']);
    const redacted = events('response_redacted').find((e) => e.data?.filter === 'redact' && String(e.data.paths).includes('$.password'));
    expect(redacted?.route).toBe('petstore');
    expect(JSON.stringify(events('response_redacted'))).not.toContain('hunter2');
  });

  it('writeOnly properties never come back, undeclared ones neither; a card number in a declared field is masked', async () => {
    const res = await send(gw.url, '/v1/users/alice');
    expect(res.status).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['email', 'id', 'phone', 'username']);
    expect(body.phone).not.toContain('4111 1111 1111');
    expect(res.text).not.toContain('correct horse');
    expect(res.text).not.toContain('argon2');
    expect(events('response_secret_detected').length).toBeGreaterThan(0);
  });

  it('an upstream 500 with a stack trace and SQL becomes a problem: none of its body or headers reach the client', async () => {
    const res = await send(gw.url, '/v1/pets/2');
    expect(res.status).toBe(502);
    expect(problemOf(res).code).toBe('RMP_UPSTREAM_ERROR');
    const everything = res.text + JSON.stringify(res.headers);
    for (const leaked of ['duplicate key', 'node_modules', 'SELECT', 'Express', 'x-debug-sql']) expect(everything).not.toContain(leaked);
    const refused = events('response_refused').find((e) => e.data?.upstreamStatus === 500);
    expect(refused?.data).toEqual({ problem: 'RMP_UPSTREAM_ERROR', upstreamStatus: 500 });
    expect(JSON.stringify(refused)).not.toContain('duplicate key');
  });

  it('an answer whose status the operation does not declare is refused, and nothing of it is sent', async () => {
    const res = await send(gw.url, '/v1/pets/3');
    expect(res.status).toBe(502);
    expect(problemOf(res).code).toBe('RMP_RESPONSE_UNDECLARED');
    expect(res.text).not.toContain('Queued');
    expect(events('response_refused').some((e) => e.data?.problem === 'RMP_RESPONSE_UNDECLARED' && e.data.upstreamStatus === 202)).toBe(true);
  });

  it('an explicitly open map keeps its entries; redaction still removes sensitive names in it', async () => {
    const res = await send(gw.url, '/v1/store/inventory', { headers: { 'x-api-key': 'ignored' } });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ available: 3, sold: 2 });
  });

  it('a declared error answer (404 via default) is allowlisted too', async () => {
    const res = await send(gw.url, '/v1/pets/4');
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ code: 404, message: 'no such pet' });
  });

  it('lists: items and nested objects cut to their schema', async () => {
    const res = await send(gw.url, '/v1/pets');
    expect(res.json()).toEqual({ items: [{ id: 5, name: 'Tom' }], next: null });
  });

  it('without the filters (allowlist: false, redact and detect off) the same answer passes whole: the filters are what removes it', async () => {
    const res = await send(gw.url, '/raw/v1/pets/1');
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ password: 'hunter2', internalNotes: 'bites the vet; owner owes 300' });
  });
});
