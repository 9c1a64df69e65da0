import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes } from '../../src/errors/codes.js';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.js';
import { exchange, parseResponses, type RawResponse } from './raw-http.js';
import { fuzz, FUZZ_TIMEOUT } from './fuzz.js';

/**
 * The gateway over real HTTP, on raw sockets: random methods, request targets (percent-encoding,
 * dot segments, backslashes, semicolons, unicode, NUL, huge), headers and bodies with every
 * kind of framing. Every answer is a well-formed HTTP/1.1 response; every error is problem+json
 * with a code of src/errors/codes.ts and its status, never a 500; the gateway keeps answering;
 * the routes that must refuse everything (JWT without a token, an IP filter that denies
 * 127.0.0.1) never reach their upstream; and what is forwarded stays under the route's base path
 * with no dot segment, backslash or fragment.
 *
 * Reproduce a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/fuzz/router.fuzz.test.ts
 */

let open: TestUpstream;
let guarded: TestUpstream;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  open = await startUpstream();
  guarded = await startUpstream();
  gw = await startGateway({
    versions: {
      one: { select: { header: 'api-version', value: '1' } },
      two: { select: { header: 'api-version', value: '2' }, default: true },
    },
    upstreams: { open: { targets: [{ url: `${open.url}/base` }] }, guarded: { targets: [{ url: guarded.url }] } },
    routes: [
      { name: 'files', match: { path: '/files/*' }, upstream: 'open', stripPrefix: '/files' },
      { name: 'item', match: { path: '/items/:id', methods: ['GET', 'PUT', 'DELETE'] }, upstream: 'open', rewrite: '/internal/items/:id' },
      { name: 'things-1', version: 'one', match: { path: '/things/:id' }, upstream: 'open' },
      { name: 'things-2', version: 'two', match: { path: '/things/:id' }, upstream: 'open' },
      { name: 'hosted', match: { path: '/hosted/*', host: 'api.example.com' }, upstream: 'open' },
      { name: 'private', match: { path: '/private/*' }, upstream: 'guarded', policies: { jwt: { algorithms: ['HS256'], secret: 's'.repeat(32), issuer: 'https://issuer.test', audience: 'api' } } },
      { name: 'admin', match: { path: '/admin/*' }, upstream: 'guarded', policies: { 'ip-filter': { deny: ['127.0.0.1', '::1'] } } },
    ],
  });
  port = Number(new URL(gw.url).port);
});
afterAll(async () => {
  await gw?.close();
  await open?.close();
  await guarded?.close();
});

// ---------------------------------------------------------------------------------------------
// Requests.

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY') },
  { weight: 2, arbitrary: fc.constantFrom('TRACE', 'TRACK', 'CONNECT', 'PROPFIND', 'MKCOL', 'PURGE', 'SEARCH', 'get', 'Get', 'M-SEARCH', 'BREW', 'PRI') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

const segment = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom('', '.', '..', '...', '%2e', '%2E', '%2e%2E', '.%2e', '%2e.', '%2f', '%2F', '%5c', '%5C', '\\', '..\\', ';', ';x=1', '..;', '.;', '..;x', 'a;b=1', '%3B', '%', '%z', '%zz', '%0', '%00', '\0', '%25', '%252e', '%252f', 'é', '%C3%A9', '%c3%a9', '%FF', '%80', '😀', '%F0%9F%98%80', '~', '%7E', '*', ':', ':id', '@', '!', '$', '&', "'", '(', ')', '+', ',', '=', '[', ']', '{', '}', '|', '^', '`', '"', '<', '>', '%20', '%09', 'x', 'ok', 'id-1', '?', '#', '#frag', 'a'.repeat(300), '%u002e', '..%00', '%2e%2e%2f', '%c0%ae', '%C0%AF'),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }) },
);
const prefix = fc.constantFrom('/files', '/items', '/things', '/hosted', '/private', '/admin', '', '/FILES', '/Private', '/files/', '//files', '/./files', '/files/..', '/private;x', '/admin%2f', '/%70rivate', '/admin/.', '*', 'http://127.0.0.1/private', 'http://api.example.com/hosted', 'files', '?');
const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: fc.array(fc.oneof(fc.constantFrom('a=1', 'access_token=x', '%', 'a=%zz', ';', '=', '&', 'api-version=1', '__proto__=1', 'a=1&a=2', '#', '?'), fc.string({ maxLength: 8 })), { maxLength: 4 }).map((q) => `?${q.join('&')}`) },
);
const target = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(prefix, fc.array(segment, { maxLength: 6 }), query).map(([p, segments, q]) => p + segments.map((s) => `/${s}`).join('') + q) },
  { weight: 1, arbitrary: fc.constantFrom(8000, 8193, 12000, 17000, 70000).map((n) => `/files/${'a'.repeat(n)}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
);

const headerName = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom('host', 'content-type', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'api-version', 'accept', 'origin', 'access-control-request-method', 'access-control-request-headers', 'cookie', 'expect', 'upgrade', 'connection', 'te', 'trailer', 'x-consumer-id', 'x-request-id', 'traceparent', 'tracestate', 'content-encoding', 'range', 'if-none-match', 'user-agent', 'via', 'max-forwards', 'proxy-authorization', 'x-http-method-override', 'x-original-url', 'x-rewrite-url', 'x-api-key', 'keep-alive', 'proxy-connection', 'http2-settings', ':path', 'Host', 'HOST', 'content-length ', ' host'),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);
const headerValue = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom('127.0.0.1', 'api.example.com', 'API.EXAMPLE.COM.', 'evil.test', '127.0.0.1:1', 'a@b', '[::1]', '', ' ', 'application/json', 'text/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'Bearer x', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer a.b.c', '1.2.3.4', '1.2.3.4, 127.0.0.1', 'for=1.2.3.4;proto=https', 'https', '1', '2', '3', ' 2 ', 'application/json; version=2', '*/*', 'https://evil.test', 'null', 'GET', 'PUT, DELETE', 'a=b', '100-continue', 'websocket', 'h2c', 'upgrade', 'keep-alive', 'close', 'x-consumer-id', 'trailers', 'gzip', 'bytes=0-1', '*', 'DELETE', '/private/x', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'x'.repeat(9000), 'é', '\u00ff'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);
const header = fc.tuple(headerName, headerValue);

const body = fc.oneof(
  { weight: 4, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(64 * 1024, 1024 * 1024 + 1).map((n) => Buffer.alloc(n, 0x61)) },
);
/** How the body is framed; the malformed ones (several lengths, both framings) must be refused. */
const framing = fc.constantFrom('content-length', 'content-length', 'chunked', 'none', 'both', 'two-lengths', 'bad-length', 'negative-length', 'chunked-gzip', 'chunked-twice', 'bad-chunk');

interface Request {
  method: string;
  target: string;
  host: 'none' | 'gateway' | 'api' | 'twice';
  headers: [string, string][];
  body: Buffer;
  framing: string;
  chunkSize: number;
  crlf: boolean;
}

const request: fc.Arbitrary<Request> = fc.record({
  method,
  target,
  host: fc.constantFrom('gateway', 'gateway', 'api', 'none', 'twice'),
  headers: fc.array(header, { maxLength: 6 }),
  body,
  framing,
  chunkSize: fc.integer({ min: 1, max: 100 }),
  // Now and then a raw CR or LF inside a header value: header injection / request splitting.
  crlf: fc.boolean(),
}).map((r) => Object.assign(r, { [fc.toStringMethod]: () => JSON.stringify({ ...r, body: `${r.body.length} bytes: ${r.body.subarray(0, 40).toString('latin1')}`, target: r.target.length > 200 ? `${r.target.slice(0, 200)}… (${r.target.length})` : r.target }) }));

function encodeRequest(r: Request): Buffer {
  const lines = [`${r.method} ${r.target} HTTP/1.1`];
  if (r.host === 'gateway' || r.host === 'twice') lines.push(`Host: 127.0.0.1:${port}`);
  if (r.host === 'api' || r.host === 'twice') lines.push('Host: api.example.com');
  for (const [name, value] of r.headers) lines.push(`${name}: ${r.crlf && value.length > 2 ? `${value.slice(0, 1)}\r\n${value.slice(1)}` : value}`);
  let payload = r.body;
  const n = r.body.length;
  switch (r.framing) {
    case 'content-length':
      lines.push(`Content-Length: ${n}`);
      break;
    case 'none':
      payload = Buffer.alloc(0);
      break;
    case 'both':
      lines.push(`Content-Length: ${n}`, 'Transfer-Encoding: chunked');
      break;
    case 'two-lengths':
      lines.push(`Content-Length: ${n}`, `Content-Length: ${n + 1}`);
      break;
    case 'bad-length':
      lines.push('Content-Length: 1x');
      break;
    case 'negative-length':
      lines.push('Content-Length: -1');
      break;
    default: {
      if (r.framing === 'chunked-gzip') lines.push('Transfer-Encoding: gzip, chunked');
      else if (r.framing === 'chunked-twice') lines.push('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked');
      else lines.push('Transfer-Encoding: chunked');
      const chunks: Buffer[] = [];
      for (let i = 0; i < n; i += r.chunkSize) {
        const chunk = r.body.subarray(i, i + r.chunkSize);
        chunks.push(Buffer.from(`${r.framing === 'bad-chunk' ? 'zz' : chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
      }
      chunks.push(Buffer.from('0\r\n\r\n'));
      payload = Buffer.concat(chunks);
    }
  }
  lines.push('Connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), payload]);
}

// ---------------------------------------------------------------------------------------------
// What every answer must be.

const CODES = new Set(Object.keys(errorCodes));
const DOT_SEGMENT = /(^|[/\\])(\.|%2e){1,2}($|[/\\?;])/i;

function assertAnswer(res: RawResponse, head: boolean, what: string): void {
  expect(res.status, what).not.toBe(500);
  if (res.status < 200) return;
  expect(res.headers['x-content-type-options'], `${what}: security headers on every answer`).toEqual(['nosniff']);
  if (res.status < 400 || head) return;
  expect(res.headers['content-type'], what).toEqual(['application/problem+json; charset=utf-8']);
  const problem = JSON.parse(res.body.toString('utf8')) as { code: string; status: number; requestId: string };
  expect(CODES.has(problem.code), `${what}: unknown code ${problem.code}`).toBe(true);
  expect(problem.status, what).toBe(res.status);
  expect(errorCodes[problem.code as keyof typeof errorCodes].status, what).toBe(res.status);
  expect(typeof problem.requestId, what).toBe('string');
}

describe('fuzz: router and request parsing over HTTP', () => {
  it('every request gets a well-formed answer, errors are coded problems, denied routes never reach their upstream, forwarded paths stay put', async () => {
    let forwarded = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const bytes = encodeRequest(r);
        const seen = open.requests.length;
        const raw = await exchange(port, bytes);
        const what = JSON.stringify(bytes.subarray(0, 300).toString('latin1'));
        expect(raw.length, `${what}: the connection closed without an answer`).toBeGreaterThan(0);
        const responses = parseResponses(raw, r.method === 'HEAD');
        const finals = responses.filter((x) => x.status >= 200);
        expect(finals.length, what).toBeGreaterThan(0);
        responses.forEach((res) => assertAnswer(res, r.method === 'HEAD' && res === finals[0], what));
        expect(guarded.requests, `${what}: reached the guarded upstream`).toHaveLength(0);
        for (const sent of open.requests.slice(seen)) {
          forwarded++;
          const path = sent.url.split('?')[0]!;
          expect(path.startsWith('/base/'), `${what}: forwarded as ${sent.url}`).toBe(true);
          expect(DOT_SEGMENT.test(path) || path.includes('\\') || sent.url.includes('#'), `${what}: forwarded as ${sent.url}`).toBe(false);
        }
      }),
      fuzz(500, { endOnFailure: true }),
    );
    // The gateway still answers, and the generator reached the upstream at all.
    const raw = await exchange(port, Buffer.from(`GET /files/ok HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    expect(parseResponses(raw, false)[0]!.status).toBe(200);
    expect(forwarded).toBeGreaterThan(0);
  }, FUZZ_TIMEOUT);
});
