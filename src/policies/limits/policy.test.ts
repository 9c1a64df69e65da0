import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send, sendRaw } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

async function setup(limits: Record<string, unknown> = {}) {
  const up = await use.upstream();
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    defaults: { limits },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app' }],
  });
  return { gw, up };
}

describe('limits policy', () => {
  it('accepts a body of exactly the limit and refuses one byte more with 413, before the upstream', async () => {
    const { gw, up } = await setup({ body: '1KiB' });
    const ok = await send(gw.url, '/api/x', { method: 'POST', body: 'a'.repeat(1024), headers: { 'content-type': 'text/plain' } });
    expect(ok.status).toBe(200);
    const over = await send(gw.url, '/api/x', { method: 'POST', body: 'a'.repeat(1025), headers: { 'content-type': 'text/plain' } });
    expect(over.status).toBe(413);
    expect(problemOf(over).code).toBe('RMP_BODY_TOO_LARGE');
    expect(up.requests.map((r) => r.body.length)).toEqual([1024]);
  });

  it('defaults to 1 MiB', async () => {
    const { gw } = await setup();
    const octets = { 'content-type': 'application/octet-stream' };
    expect((await send(gw.url, '/api/x', { method: 'PUT', body: Buffer.alloc(1024 * 1024), headers: octets })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'PUT', body: Buffer.alloc(1024 * 1024 + 1), headers: octets })).status).toBe(413);
  });

  it('counts a chunked body as it streams and answers 413 past the limit', async () => {
    const { gw, up } = await setup({ body: '1KiB' });
    const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
    const within = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('a'.repeat(1000))}${chunk('b'.repeat(24))}0\r\n\r\n`);
    expect(within).toMatch(/^HTTP\/1\.1 200 /);
    expect(up.requests[0]!.body.length).toBe(1024);
    const over = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('a'.repeat(1000))}${chunk('b'.repeat(25))}0\r\n\r\n`);
    expect(over).toMatch(/^HTTP\/1\.1 413 /);
    expect(over).toContain('"code":"RMP_BODY_TOO_LARGE"');
    expect(up.requests).toHaveLength(1);
  });

  it('accepts only the allowed body media types (415 otherwise); XML is refused unless a route lists it', async () => {
    const { gw, up } = await setup();
    const post = (type: string | undefined, body = '{}') => send(gw.url, '/api/x', { method: 'POST', body, headers: type === undefined ? {} : { 'content-type': type } });
    for (const type of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/vnd.api+json', 'text/plain;charset=utf-8', 'multipart/form-data; boundary=x']) {
      expect((await post(type)).status, type).toBe(200);
    }
    for (const type of [undefined, 'application/xml', 'text/xml', 'application/soap+xml', 'application/jsonx', 'json', 'application/json;;;=', 'text/html']) {
      const res = await post(type, '<a/>');
      expect(res.status, String(type)).toBe(415);
      expect(problemOf(res).code).toBe('RMP_UNSUPPORTED_MEDIA_TYPE');
    }
    expect(up.requests).toHaveLength(6);
    // Requests without a body need no Content-Type.
    expect((await send(gw.url, '/api/x')).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'DELETE' })).status).toBe(200);
  });

  it('lets a route accept XML by listing it', async () => {
    const { gw } = await setup({ contentTypes: ['application/xml', 'application/*+xml'] });
    expect((await send(gw.url, '/api/x', { method: 'POST', body: '<a/>', headers: { 'content-type': 'application/xml' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'POST', body: '<a/>', headers: { 'content-type': 'application/atom+xml' } })).status).toBe(200);
    expect((await send(gw.url, '/api/x', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(415);
  });

  describe('JSON bodies', () => {
    const postJson = (base: string, body: string) => send(base, '/api/x', { method: 'POST', body, headers: { 'content-type': 'application/json' } });

    it('forwards a valid JSON body byte for byte', async () => {
      const { gw, up } = await setup();
      const body = '{ "a" : 1,\n"a": 2, "s": "\u00e9" }';
      expect((await postJson(gw.url, body)).status).toBe(200);
      expect(up.requests[0]!.body.toString()).toBe(body);
    });

    it('refuses invalid JSON and prototype keys before the upstream', async () => {
      const { gw, up } = await setup();
      for (const [body, code] of [
        ['{"a":', 'RMP_JSON_INVALID'],
        ['{"a":1}garbage', 'RMP_JSON_INVALID'],
        ['prototype', 'RMP_JSON_INVALID'],
        ['{"__proto__":{"isAdmin":true}}', 'RMP_JSON_FORBIDDEN_KEY'],
        ['{"user":{"__proto__":{"isAdmin":true}}}', 'RMP_JSON_FORBIDDEN_KEY'],
        ['{"constructor":{"prototype":{"isAdmin":true}}}', 'RMP_JSON_FORBIDDEN_KEY'],
      ] as const) {
        const res = await postJson(gw.url, body);
        expect(res.status, body).toBe(400);
        expect(problemOf(res).code, body).toBe(code);
      }
      expect(up.requests).toHaveLength(0);
    });

    it('checks depth, keys per object and items per array at the boundary', async () => {
      const { gw, up } = await setup({ json: { depth: 3, keys: 3, items: 3 } });
      for (const [body, ok] of [
        ['[[[1]]]', true],
        ['[[[[1]]]]', false],
        ['{"a":{"b":{"c":1}}}', true],
        ['{"a":{"b":{"c":{}}}}', false],
        ['{"a":1,"b":2,"c":3}', true],
        ['{"a":1,"b":2,"c":3,"d":4}', false],
        ['[1,2,3]', true],
        ['[1,2,3,4]', false],
      ] as const) {
        const res = await postJson(gw.url, body);
        expect(res.status, body).toBe(ok ? 200 : 400);
        if (!ok) expect(problemOf(res).code, body).toBe('RMP_JSON_LIMIT_EXCEEDED');
      }
      expect(up.requests).toHaveLength(4);
    });

    it('refuses 100 000 levels of nesting quickly under the default depth of 32', async () => {
      const { gw } = await setup();
      const res = await postJson(gw.url, '['.repeat(100_000) + ']'.repeat(100_000));
      expect(res.status).toBe(400);
      expect(problemOf(res).code).toBe('RMP_JSON_LIMIT_EXCEEDED');
    });

    it('applies the body limit while reading a chunked JSON body', async () => {
      const { gw, up } = await setup({ body: '1KiB' });
      const json = JSON.stringify({ a: 'x'.repeat(2000) });
      const answer = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`);
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(up.requests).toHaveLength(0);
    });
  });

  it('refuses a request target one byte over the URL limit with 414', async () => {
    const { gw, up } = await setup({ url: 100 });
    const at = '/api/' + 'x'.repeat(95);
    expect(at.length).toBe(100);
    expect((await send(gw.url, at)).status).toBe(200);
    const over = await send(gw.url, at + 'y');
    expect(over.status).toBe(414);
    expect(problemOf(over).code).toBe('RMP_URL_TOO_LONG');
    expect(up.requests).toHaveLength(1);
  });

  it('refuses more header fields than the limit with 431', async () => {
    const { gw, up } = await setup({ headers: 10 });
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
    // node:http adds Host and Connection: 8 + 2 = 10 fields.
    expect((await send(gw.url, '/api/x', { headers: fields(8) })).status).toBe(200);
    const over = await send(gw.url, '/api/x', { headers: fields(9) });
    expect(over.status).toBe(431);
    expect(problemOf(over).code).toBe('RMP_REQUEST_HEADERS_TOO_LARGE');
    expect(up.requests).toHaveLength(1);
  });
});
