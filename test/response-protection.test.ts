import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { closeAfterEach } from './helpers/gateway.js';
import { problemOf, send } from './helpers/http.js';

/**
 * The response engine of the proxy (src/gateway/proxy/response-body.ts) with the default
 * response filters (redact, detect, upstream-errors): what a client sees of an upstream's answer,
 * over real HTTP against real upstreams.
 */

const use = closeAfterEach(afterEach);

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

async function setup(handler: Handler, policies: Record<string, unknown> = {}) {
  const up = await use.upstream(handler);
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies }],
  });
  return { up, gw };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** A JSON document of exactly `size` bytes holding a password. */
function sized(size: number): string {
  const base = '{"password":"hunter2","pad":""}';
  return `${base.slice(0, -2)}${'x'.repeat(size - base.length)}"}`;
}

const LEAKS = ['hunter2', 'SELECT', 'at Object', '/srv/app', '4111 1111 1111 1111', 'MIIEvQIBADANBg', 'AKIAIOSFODNN7EXAMPLE'];

describe('response protection (acceptance)', () => {
  it('an upstream returning a password, a card number, a private key, a cloud key and a stack-trace 500: the client sees none of them; events are recorded', async () => {
    const { gw } = await setup((req, res) => {
      if (req.url === '/api/boom') {
        res.writeHead(500, { 'content-type': 'text/plain', 'x-debug-sql': 'SELECT * FROM users', server: 'express' });
        res.end('Error: relation "users" does not exist\n    at Object.query (/srv/app/db.js:12:7)\nSELECT * FROM users WHERE id = 1');
        return;
      }
      json(res, 200, {
        user: { id: 'u1', name: 'Alice', password: 'hunter2', profile: { API_KEY: 'k-123', notes: 'hello' } },
        items: [{ id: 1, token: 't1' }, { id: 2, 'pass-word': 'hunter2', Password: 'hunter2', passwordHint: 'pet' }],
        payment: { card: '4111 1111 1111 1111', reference: '4111 1111 1111 1112' },
        deploy: { key: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n', aws: 'id=AKIAIOSFODNN7EXAMPLE;' },
      });
    });
    const ok = await send(gw.url, '/api/profile');
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({
      user: { id: 'u1', name: 'Alice', profile: { notes: 'hello' } },
      items: [{ id: 1 }, { id: 2, passwordHint: 'pet' }],
      payment: { card: '**** **** **** 1111', reference: '4111 1111 1111 1112' },
      deploy: { key: '[REDACTED:privateKey]\n', aws: 'id=[REDACTED:cloudKey];' },
    });
    expect(Number(ok.headers['content-length'])).toBe(Buffer.byteLength(ok.text));
    for (const leak of ['hunter2', 'k-123', 't1', 'MIIEvQIBADANBg', 'AKIAIOSFODNN7EXAMPLE']) expect(ok.text).not.toContain(leak);

    const boom = await send(gw.url, '/api/boom');
    expect(boom.status).toBe(502);
    expect(problemOf(boom)).toMatchObject({ code: 'RMP_UPSTREAM_ERROR', status: 502 });
    const everything = boom.text + JSON.stringify(boom.headers);
    for (const leak of LEAKS) expect(everything).not.toContain(leak);
    expect(boom.headers['x-debug-sql']).toBeUndefined();
    expect(boom.headers.server).toBeUndefined();

    const redacted = await gw.logs.waitFor((l) => l.event === 'response_redacted');
    expect(redacted).toMatchObject({ eventLevel: 'WARN', route: 'api', data: { filter: 'redact', count: 5, status: 200 } });
    expect((redacted.data as { paths: string }).paths.split(', ').sort()).toEqual(['$.items[0].token', '$.items[1]["pass-word"]', '$.items[1].Password', '$.user.password', '$.user.profile.API_KEY'].sort());
    const detected = await gw.logs.waitFor((l) => l.event === 'response_secret_detected');
    expect(detected).toMatchObject({ eventLevel: 'WARN', data: { filter: 'detect', count: 3, kinds: 'card,cloudKey,privateKey' } });
    // Events name paths, never values.
    for (const leak of LEAKS) expect(JSON.stringify([redacted, detected])).not.toContain(leak);
    // The upstream's error is in the log for operators, with the request id.
    const logged = await gw.logs.waitFor((l) => l.msg === 'upstream answer refused');
    expect(logged).toMatchObject({ upstreamStatus: 500, requestId: boom.headers['x-request-id'] });
    expect(String(logged.upstreamBody)).toContain('relation "users" does not exist');
  });
});

describe('the response engine', () => {
  it('forwards an answer no filter changed byte for byte, validators included', async () => {
    const text = '{ "b" : [1, 2.50, "x"],\n  "a":{"nested" :true} }';
    const { gw } = await setup((_req, res) => json(res, 200, text, { etag: '"v1"', 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }));
    const res = await send(gw.url, '/api/x');
    expect(res.text).toBe(text);
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(text)));
    expect(res.headers.etag).toBe('"v1"');
    expect(res.headers['last-modified']).toBeDefined();
  });

  it('a rewritten answer gets its new Content-Length and loses its validators', async () => {
    const { gw } = await setup((_req, res) => json(res, 200, { a: 'é', secret: 's' }, { etag: '"v1"', 'content-md5': 'abc', 'x-keep': 'yes' }));
    const res = await send(gw.url, '/api/x');
    expect(res.text).toBe('{"a":"é"}');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength('{"a":"é"}')));
    expect(res.headers.etag).toBeUndefined();
    expect(res.headers['content-md5']).toBeUndefined();
    expect(res.headers['x-keep']).toBe('yes');
  });

  it('asks the upstream for identity encoding on filtered routes, and strips Range', async () => {
    const { up, gw } = await setup((_req, res) => json(res, 200, { ok: true }));
    await send(gw.url, '/api/x', { headers: { 'accept-encoding': 'gzip, br', range: 'bytes=0-3' } });
    expect(up.requests[0]!.headers['accept-encoding']).toBe('identity');
    expect(up.requests[0]!.headers.range).toBeUndefined();
  });

  it('decompresses an upstream that compresses anyway (gzip, deflate, br) and answers identity', async () => {
    const body = Buffer.from(JSON.stringify({ keep: 'me', password: 'hunter2' }));
    const encoders: Record<string, (b: Buffer) => Buffer> = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
    const { gw } = await setup((req, res) => {
      const encoding = req.url!.slice('/api/'.length);
      const compressed = encoders[encoding]!(body);
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': String(compressed.length) });
      res.end(compressed);
    });
    for (const encoding of Object.keys(encoders)) {
      const res = await send(gw.url, `/api/${encoding}`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      expect(res.status, encoding).toBe(200);
      expect(res.headers['content-encoding'], encoding).toBeUndefined();
      expect(res.text, encoding).toBe('{"keep":"me"}');
      expect(res.headers['content-length']).toBe('13');
    }
  });

  it('refuses a gzip bomb past the bound, and an encoding it cannot decode, without sending any of it', async () => {
    // 16 MiB of JSON in about 16 KiB of gzip.
    const bomb = gzipSync(Buffer.from(`{"password":"hunter2","pad":"${'0'.repeat(16 * 1024 * 1024)}"}`));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const { gw } = await setup((req, res) => {
      const zstd = req.url === '/api/zstd';
      const payload = zstd ? Buffer.from('{"password":"hunter2"}') : bomb;
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': zstd ? 'zstd' : 'gzip', 'content-length': String(payload.length) });
      res.end(payload);
    });
    const started = Date.now();
    const res = await send(gw.url, '/api/bomb');
    expect(res.status).toBe(502);
    expect(problemOf(res).code).toBe('RMP_RESPONSE_TOO_LARGE');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2000);
    const zstd = await send(gw.url, '/api/zstd');
    expect(zstd.status).toBe(502);
    expect(problemOf(zstd).code).toBe('RMP_RESPONSE_INVALID');
    expect(zstd.text).not.toContain('hunter2');
  });

  it('bound, refuse: at the limit it is filtered; one byte over it is refused, whether declared or chunked', async () => {
    const { up, gw } = await setup(
      (req, res) => {
        const size = Number(req.url!.split('/')[2]);
        const text = sized(size);
        if (req.url!.endsWith('/chunked')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(text.slice(0, 100));
          setTimeout(() => res.end(text.slice(100)), 20);
          return;
        }
        json(res, 200, text);
      },
      { limits: { response: { buffer: '1KiB' } } },
    );
    const at = await send(gw.url, '/api/1024');
    expect(at.status).toBe(200);
    expect(at.text).not.toContain('hunter2');
    for (const path of ['/api/1025', '/api/1025/chunked']) {
      const over = await send(gw.url, path);
      expect(over.status, path).toBe(502);
      expect(problemOf(over).code, path).toBe('RMP_RESPONSE_TOO_LARGE');
      expect(over.text).not.toContain('hunter2');
    }
    const chunkedAt = await send(gw.url, '/api/1024/chunked');
    expect(chunkedAt.status).toBe(200);
    expect(chunkedAt.text).not.toContain('hunter2');
    expect(up.requests).toHaveLength(4);
  });

  it('bound, stream: over the limit the answer is sent unfiltered and a response_unfiltered event is recorded', async () => {
    const { gw } = await setup(
      (req, res) => {
        const size = Number(req.url!.split('/')[2]);
        const text = sized(size);
        if (req.url!.endsWith('/chunked')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(text.slice(0, 100));
          setTimeout(() => res.end(text.slice(100)), 20);
          return;
        }
        json(res, 200, text);
      },
      { limits: { response: { buffer: '1KiB', oversize: 'stream' } } },
    );
    const at = await send(gw.url, '/api/1024');
    expect(at.text).not.toContain('hunter2');
    const over = await send(gw.url, '/api/1025');
    expect(over.status).toBe(200);
    expect(over.text).toBe(sized(1025));
    const declared = await gw.logs.waitFor((l) => l.event === 'response_unfiltered');
    expect(declared).toMatchObject({ eventLevel: 'WARN', route: 'api', data: { reason: 'declared larger than the bound', limit: 1024 } });
    const chunked = await send(gw.url, '/api/5000/chunked');
    expect(chunked.status).toBe(200);
    expect(chunked.text).toBe(sized(5000));
    await gw.logs.waitFor((l) => l.event === 'response_unfiltered' && (l.data as { reason: string }).reason === 'larger than the bound');
  });

  it('refuses an answer that says it is JSON but does not parse, or has a __proto__ key', async () => {
    const { gw } = await setup((req, res) => {
      const text = req.url === '/api/proto' ? '{"__proto__":{"admin":true},"password":"hunter2"}' : '{"password":"hunter2", oops';
      res.writeHead(200, { 'content-type': req.url === '/api/proto' ? 'text/plain' : 'application/problem+json' });
      res.end(text);
    });
    for (const path of ['/api/bad', '/api/proto']) {
      const res = await send(gw.url, path);
      expect(res.status, path).toBe(502);
      expect(problemOf(res).code, path).toBe('RMP_RESPONSE_INVALID');
      expect(res.text).not.toContain('hunter2');
    }
  });

  it('filters JSON sent without a Content-Type, as text/* or application/octet-stream (clients parse it whatever its label); streams anything else untouched', async () => {
    const { gw } = await setup((req, res) => {
      const text = '  {"password":"hunter2","ok":1}';
      if (req.url === '/api/none') {
        res.end(text);
        return;
      }
      if (req.url === '/api/plain') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(text);
        return;
      }
      if (req.url === '/api/words') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('password: hunter2');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(text.length) });
      res.end(text);
    });
    expect((await send(gw.url, '/api/none')).text).toBe('{"ok":1}');
    expect((await send(gw.url, '/api/plain')).text).toBe('{"ok":1}');
    expect((await send(gw.url, '/api/words')).text).toBe('password: hunter2');
    const binary = await send(gw.url, '/api/binary');
    expect(binary.text).toBe('{"ok":1}');
    expect(binary.headers['content-type']).toBe('application/octet-stream');
  });

  it('filters a 4xx JSON answer too (it passes through upstream-errors by default)', async () => {
    const { gw } = await setup((_req, res) => json(res, 422, { type: 'about:blank', title: 'Invalid', token: 'leaked-token' }, { 'content-type': 'application/problem+json' }));
    const res = await send(gw.url, '/api/x');
    expect(res.status).toBe(422);
    expect(res.json()).toEqual({ type: 'about:blank', title: 'Invalid' });
  });

  it('answers HEAD and 204 as the upstream did', async () => {
    const { gw } = await setup((req, res) => {
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '20' });
      res.end(req.method === 'HEAD' ? undefined : '{"password":"abcde"}');
    });
    const head = await send(gw.url, '/api/x', { method: 'HEAD' });
    expect([head.status, head.text, head.headers['content-length']]).toEqual([200, '', '20']);
    const empty = await send(gw.url, '/api/x', { method: 'DELETE' });
    expect([empty.status, empty.text]).toEqual([204, '']);
  });

  it('keeps the default 1 MiB bound when limits is off for the route', async () => {
    const { gw } = await setup((_req, res) => json(res, 200, sized(1024 * 1024 + 1)), { limits: false });
    const res = await send(gw.url, '/api/x');
    expect(res.status).toBe(502);
    expect(problemOf(res).code).toBe('RMP_RESPONSE_TOO_LARGE');
  });

  it('with the filters off, answers stream untouched (compressed too)', async () => {
    const body = gzipSync(Buffer.from('{"password":"hunter2"}'));
    const { up, gw } = await setup(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) });
        res.end(body);
      },
      { redact: false, detect: false },
    );
    const res = await send(gw.url, '/api/x', { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(up.requests[0]!.headers['accept-encoding']).toBe('gzip');
  });
});

describe('authorize response rules on the same path', () => {
  const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
  const token = (sub: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('i').setAudience('a').setSubject(sub).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

  it('checks see the answer as sent, filters run after; past the bound a checked answer is refused even with oversize: stream', async () => {
    const up = await use.upstream((req, res) => {
      if (req.url === '/api/big') return json(res, 200, { ownerId: 'alice', pad: 'x'.repeat(4096) });
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '999999' });
        return void res.end();
      }
      json(res, 200, { ownerId: 'alice', password: 'hunter2', text: 'mine' });
    });
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [
        {
          name: 'api',
          match: { path: '/api/*' },
          upstream: 'app',
          policies: {
            jwt: { algorithms: ['HS256'], secret: SECRET, issuer: 'i', audience: 'a' },
            authorize: { response: ['response.body.ownerId == consumer.id && has(response.body.password)'] },
            limits: { response: { buffer: '1KiB', oversize: 'stream' } },
          },
        },
      ],
    });
    const alice = { authorization: `Bearer ${await token('alice')}` };
    const mine = await send(gw.url, '/api/note', { headers: alice });
    expect(mine.status).toBe(200);
    expect(mine.json()).toEqual({ ownerId: 'alice', text: 'mine' });
    const theirs = await send(gw.url, '/api/note', { headers: { authorization: `Bearer ${await token('bob')}` } });
    expect([theirs.status, problemOf(theirs).code]).toEqual([404, 'RMP_OBJECT_NOT_FOUND']);
    const big = await send(gw.url, '/api/big', { headers: alice });
    expect([big.status, problemOf(big).code]).toEqual([502, 'RMP_RESPONSE_TOO_LARGE']);
    expect(big.text).not.toContain('xxxx');
    // HEAD is answered by the gateway (404), whatever length the upstream declares.
    expect((await send(gw.url, '/api/note', { method: 'HEAD', headers: alice })).status).toBe(404);
  });
});
