import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogs, closeAfterEach, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.js';
import { problemOf, send, sendRaw, type Response } from '../../../test/helpers/http.js';
import { rampart } from '../../index.js';
import { createLogger } from '../../observability/logger.js';
import { NOSQL_OPERATORS } from './operators.js';

const use = closeAfterEach(afterEach);

/** Routes: `/api/*` (a wildcard), `/files/:name`, and `/raw/*` without `limits` (inspect reads the body itself). */
async function setup(inspect: Record<string, unknown> = {}, routeInspect?: Record<string, unknown> | false) {
  const up = await use.upstream();
  const own = routeInspect === undefined ? {} : { inspect: routeInspect };
  const gw = await use.gateway({
    upstreams: { app: { targets: [{ url: up.url }] } },
    defaults: { inspect },
    routes: [
      { name: 'api', match: { path: '/api/*' }, upstream: 'app', policies: own },
      { name: 'files', match: { path: '/files/:name' }, upstream: 'app', policies: own },
      { name: 'raw', match: { path: '/raw/*' }, upstream: 'app', policies: { ...own, limits: false } },
    ],
  });
  return { gw, up };
}

const json = { 'content-type': 'application/json' };
const postJson = (gw: TestGateway, body: string, path = '/api/x') => send(gw.url, path, { method: 'POST', body, headers: json });

const OPERATOR = 'A NoSQL query operator is not accepted as a key.';
const QUERY_OPERATOR = 'A NoSQL query operator is not accepted in a parameter name.';
const NUL = 'A NUL character is not accepted.';
const CRLF_QUERY = 'A CR or LF character is not accepted in a query or path value: it may end up in a header.';
const CRLF_FIELD = 'A CR or LF character is not accepted in this field: it ends up in a header.';
const SEPARATOR = 'A path parameter may not hold "/" or "\\".';
const DOT = 'A path parameter may not be a dot segment ("." or "..").';
const OVERLONG = 'A path parameter may not hold an overlong UTF-8 sequence.';
const TWICE = ' (found after decoding it twice)';

/** The refusal: 400 RMP_INPUT_REJECTED with exactly these pointers. */
function expectRejected(res: Response, pointers: string[], label = ''): { pointer: string; detail: string }[] {
  expect(res.status, `${label} ${res.text}`).toBe(400);
  const problem = problemOf(res);
  expect(problem.code, label).toBe('RMP_INPUT_REJECTED');
  expect(problem.type).toBe('https://rampart.dev/docs/errors#rmp_input_rejected');
  const errors = problem.errors as { pointer: string; detail: string }[];
  expect(errors.map((e) => e.pointer), label).toEqual(pointers);
  return errors;
}

/** Accepted: 200, and the upstream got these very bytes. */
function expectForwarded(res: Response, up: TestUpstream, url: string, body?: string, label = url): void {
  expect(res.status, `${label} ${res.text}`).toBe(200);
  const last = up.requests.at(-1)!;
  expect(last.url, label).toBe(url);
  if (body !== undefined) expect(last.body.toString('utf8'), label).toBe(body);
}

describe('inspect policy', () => {
  describe('nosqlOperators', () => {
    it('refuses operator keys at any depth of a JSON body, before the upstream', async () => {
      const { gw, up } = await setup();
      for (const [body, pointers] of [
        ['{"user":"alice","password":{"$ne":""}}', ['/body/password/$ne']],
        ['{"a":[{"b":{"$where":"sleep(5000)"}}]}', ['/body/a/0/b/$where']],
        ['[{"$or":[{"a":1},{"b":2}]}]', ['/body/0/$or']],
        ['{"$expr":{"$function":{"body":"f","args":[],"lang":"js"}}}', ['/body/$expr', '/body/$expr/$function']],
        // An escaped `$` is still a `$` to the upstream's parser.
        ['{"age":{"\\u0024gt":0}}', ['/body/age/$gt']],
        ['{"a/b~c":{"$in":[1]}}', ['/body/a~1b~0c/$in']],
      ] as const) {
        const res = await postJson(gw, body);
        const errors = expectRejected(res, [...pointers], body);
        expect(errors[0]!.detail).toBe(OPERATOR);
        // Never the value.
        expect(res.text).not.toContain('sleep');
      }
      expect(up.requests).toHaveLength(0);
    });

    it('refuses every operator of the documented list', async () => {
      const { gw, up } = await setup();
      for (const operator of NOSQL_OPERATORS) {
        expectRejected(await postJson(gw, JSON.stringify({ field: { [operator]: 1 } })), [`/body/field/${operator}`], operator);
      }
      expect(NOSQL_OPERATORS.size).toBe(25);
      expect(up.requests).toHaveLength(0);
    });

    it('accepts `$` in values and `$` keys off the list (JSON Schema, Extended JSON, .NET, OData), byte for byte', async () => {
      const { gw, up } = await setup();
      const body = '{"price":"$5","note":"{\\"$ne\\": 1} is how Mongo says not-equal","$schema":"https://json-schema.org/draft/2020-12/schema","$ref":"#/x","$id":"a","$type":"Circle","_id":{"$oid":"5f1d"},"tags":["$in","$where"],"$":1,"a$ne":2}';
      expectForwarded(await postJson(gw, body), up, '/api/x', body);
      const unicode = '{ "name": "日本語 🎉 café", "s": "\\u00e9\\ud83d\\ude00", "emptyKey": {"": ""} }';
      expectForwarded(await postJson(gw, unicode), up, '/api/x', unicode);
    });

    it('with anyDollarKey, refuses every key starting with `$`', async () => {
      const { gw, up } = await setup({ anyDollarKey: true });
      const errors = expectRejected(await postJson(gw, '{"$schema":"x","a":{"$ne":1}}'), ['/body/$schema', '/body/a/$ne']);
      expect(errors.map((e) => e.detail)).toEqual(['A key starting with "$" is not accepted.', OPERATOR]);
      expectRejected(await send(gw.url, '/api/x?$filter=a'), ['/query/$filter']);
      expectForwarded(await postJson(gw, '{"price":"$5","a$":1}'), up, '/api/x', '{"price":"$5","a$":1}');
    });

    it('refuses operators in query names, alone or in bracket and dot form, however encoded', async () => {
      const { gw, up } = await setup();
      for (const [query, pointer] of [
        ['?user[$ne]=x', '/query/user[$ne]'],
        ['?a[b][$gt]=1', '/query/a[b][$gt]'],
        ['?$where=1', '/query/$where'],
        ['?a.$gt=1', '/query/a.$gt'],
        ['?user%5B%24ne%5D=x', '/query/user[$ne]'],
        ['?us%65r[%24n%65]=1', '/query/user[$ne]'],
        ['?ok=1&filter[age][$regex]=.*', '/query/filter[age][$regex]'],
        ['?a[]=1&a[][$in]=2', '/query/a[][$in]'],
        ['?x/y[$nin]=1', '/query/x~1y[$nin]'],
      ] as const) {
        const errors = expectRejected(await send(gw.url, `/api/x${query}`), [pointer], query);
        expect(errors[0]!.detail).toBe(QUERY_OPERATOR);
      }
      expect(up.requests).toHaveLength(0);
      for (const query of ['?price=$5', '?q=%24ne', '?q=[$ne]', '?$filter=name%20eq%20%27x%27&$top=10', '?a$ne=1', '?user[name]=x', '?$=1']) {
        expectForwarded(await send(gw.url, `/api/x${query}`), up, `/api/x${query}`);
      }
    });
  });

  describe('nulBytes', () => {
    it('refuses NUL in JSON values and keys, query names and values, path parameters', async () => {
      const { gw, up } = await setup();
      expectRejected(await postJson(gw, '{"a":"x\\u0000y"}'), ['/body/a']);
      expectRejected(await postJson(gw, '"\\u0000"'), ['/body']);
      // The key itself is the payload: it is shown with the NUL replaced.
      const errors = expectRejected(await postJson(gw, '{"list":[{"a\\u0000b":1}]}'), ['/body/list/0/a\ufffdb']);
      expect(errors[0]!.detail).toBe(NUL);
      expectRejected(await send(gw.url, '/api/x?a=%00'), ['/query/a']);
      expectRejected(await send(gw.url, '/api/x?a%00b=1'), ['/query/a\ufffdb']);
      expectRejected(await send(gw.url, '/files/a%00.txt'), ['/path/name']);
      expectRejected(await send(gw.url, '/files/a%2500.txt'), ['/path/name']);
      expectRejected(await send(gw.url, '/api/x/a%00'), ['/path/*']);
      expect(up.requests).toHaveLength(0);
      // A `\u0000` that is text, not an escape, is fine.
      expectForwarded(await postJson(gw, '{"a":"\\\\u0000"}'), up, '/api/x', '{"a":"\\\\u0000"}');
      expectForwarded(await send(gw.url, '/api/x?a=%2500'), up, '/api/x?a=%2500');
    });

    it('refuses NUL in a header value in library mode (where the host app may parse leniently), and leaves its bodies to it', async () => {
      const logs = captureLogs();
      const app = Fastify();
      let called = 0;
      await app.register(rampart, {
        logger: createLogger({ level: 'info', destination: 'stdout' }, logs.stream),
        config: { routes: [{ name: 'x', match: { path: '/x', methods: ['GET', 'POST'] }, public: true }] },
      });
      app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, { form: body }));
      app.get('/x', async () => ({ called: ++called }));
      app.post('/x', async (request) => request.body);
      try {
        const res = await app.inject({ method: 'GET', url: '/x', headers: { 'x-note': 'a\u0000b' } });
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({ code: 'RMP_INPUT_REJECTED', errors: [{ pointer: '/header/x-note', detail: NUL }] });
        expect(called).toBe(0);
        expect((await app.inject({ method: 'GET', url: '/x', headers: { 'x-note': 'a b' } })).statusCode).toBe(200);
        expect(called).toBe(1);
        // The host app's handlers read their bodies from the raw stream: inspect leaves them unread.
        const posted = await app.inject({ method: 'POST', url: '/x', payload: 'a=1&b=%24', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        expect(posted.statusCode).toBe(200);
        expect(posted.json()).toEqual({ form: 'a=1&b=%24' });
      } finally {
        await app.close();
      }
    });
  });

  describe('crlf', () => {
    it('refuses CR or LF in query values and names and in path parameters, decoded once or twice', async () => {
      const { gw, up } = await setup();
      for (const [path, pointer] of [
        ['/api/x?next=%0d%0aSet-Cookie:%20a=1', '/query/next'],
        ['/api/x?next=a%0Ab', '/query/next'],
        ['/api/x?a%0d=1', '/query/a\ufffd'],
        ['/files/a%0D%0ASet-Cookie:x', '/path/name'],
        ['/api/x/a%0Db', '/path/*'],
      ] as const) {
        const res = await send(gw.url, path);
        const errors = expectRejected(res, [pointer], path);
        expect(errors[0]!.detail).toBe(CRLF_QUERY);
        // Never the value (the problem's `instance` is the path, as for every problem).
        expect(JSON.stringify(errors) + problemOf(res).detail).not.toContain('Set-Cookie');
      }
      expect(expectRejected(await send(gw.url, '/files/a%250D%250Ab'), ['/path/name'])[0]!.detail).toBe(CRLF_QUERY + TWICE);
      expect(up.requests).toHaveLength(0);
      // Tabs and spaces are not line breaks; a double-encoded query value is left to typed validation.
      for (const path of ['/api/x?q=a%09b+c', '/api/x?q=a%250Ab']) expectForwarded(await send(gw.url, path), up, path);
    });

    it('refuses CR or LF in the JSON fields listed as header-bound, by pointer or by name, and nowhere else', async () => {
      const { gw, up } = await setup({ crlfFields: ['/redirectUrl', '/a~1b/0', 'filename'] });
      for (const [body, pointers] of [
        ['{"redirectUrl":"https://x/\\r\\nSet-Cookie: a=1"}', ['/body/redirectUrl']],
        ['{"files":[{"filename":"a\\nb.txt"}]}', ['/body/files/0/filename']],
        ['{"filename":["ok.txt","bad\\u000d.txt"]}', ['/body/filename/1']],
        ['{"a/b":["x\\u000Ay"]}', ['/body/a~1b/0']],
        ['{"redirectUrl":["a","b\\n"]}', ['/body/redirectUrl/1']],
      ] as const) {
        const errors = expectRejected(await postJson(gw, body), [...pointers], body);
        expect(errors[0]!.detail).toBe(CRLF_FIELD);
      }
      expect(up.requests).toHaveLength(0);
      // Free text may hold newlines; a pointer names one place only.
      const body = '{"comment":"line one\\nline two\\r\\n","redirectUrl":"https://example.com/a","nested":{"redirectUrl":"a\\nb"},"filename":"report.pdf","a/b":["ok","x\\ty"]}';
      expectForwarded(await postJson(gw, body), up, '/api/x', body);
    });
  });

  describe('pathTraversal', () => {
    it('refuses separators, dot segments, NUL and overlong UTF-8 in a path parameter, decoded once or twice', async () => {
      const { gw, up } = await setup({ nulBytes: false });
      for (const [path, detail] of [
        ['/files/%252e%252e', DOT + TWICE],
        ['/files/%252E', DOT + TWICE],
        ['/files/%252e%252e;jsessionid=1', DOT + TWICE],
        ['/files/..%252f..%252fetc%252fpasswd', SEPARATOR + TWICE],
        ['/files/..%255c..%255cwin.ini', SEPARATOR + TWICE],
        ['/files/a%252Fb', SEPARATOR + TWICE],
        ['/files/a%2Fb%252Fc', SEPARATOR + TWICE],
        ['/files/%25c0%25ae%25c0%25ae', OVERLONG + TWICE],
        ['/files/%25c0%25af', OVERLONG + TWICE],
        ['/files/%25e0%2580%25ae', OVERLONG + TWICE],
        // With nulBytes off, a NUL in a path parameter is still path traversal (file-name truncation).
        ['/files/passwd%00.png', NUL],
        ['/files/passwd%2500.png', NUL + TWICE],
        ['/api/a/%252e%252e/admin', DOT + TWICE],
        ['/api/a/..%255cadmin', DOT + TWICE],
      ] as const) {
        const errors = expectRejected(await send(gw.url, path), [path.startsWith('/api') ? '/path/*' : '/path/name'], path);
        expect(errors[0]!.detail, path).toBe(detail);
      }
      expect(up.requests).toHaveLength(0);
    });

    it('accepts dots, unicode, encoded separators and escapes that decode to nothing dangerous, forwarding the path as sent', async () => {
      const { gw, up } = await setup();
      for (const path of [
        '/files/report.v2.pdf',
        '/files/a..b',
        '/files/...',
        '/files/.hidden',
        '/files/caf%C3%A9',
        '/files/%E6%97%A5%E6%9C%AC',
        '/files/100%25',
        '/files/a%20b',
        '/files/a;b',
        // Ids that hold a separator (GitLab's `group%2Fproject`, npm's `@scope%2Fname`, `DOMAIN\user`).
        '/files/group%2Fproject',
        '/files/DOMAIN%5Cuser',
        '/files/a%2Fb%2520c',
        '/api/a%2Fb/c',
        '/api/a/b/file.tar.gz',
      ]) {
        expectForwarded(await send(gw.url, path), up, path);
      }
    });

    it('with separators, refuses a `/` or `\\` in a single parameter decoded once, never in a wildcard', async () => {
      const { gw, up } = await setup({ separators: true });
      for (const path of ['/files/group%2Fproject', '/files/DOMAIN%5Cuser', '/files/a%252Fb']) {
        const errors = expectRejected(await send(gw.url, path), ['/path/name'], path);
        expect(errors[0]!.detail, path).toBe(path.includes('%25') ? SEPARATOR + TWICE : SEPARATOR);
      }
      expect(up.requests).toHaveLength(0);
      expectForwarded(await send(gw.url, '/api/a%2Fb/c'), up, '/api/a%2Fb/c');
      expectForwarded(await send(gw.url, '/files/report.pdf'), up, '/files/report.pdf');
    });

    it('leaves single-encoded overlong forms and dot segments to the URL checks, which refuse them first', async () => {
      const { gw, up } = await setup();
      for (const path of ['/files/%C0%AE%C0%AE', '/files/%c0%af', '/files/%2e%2e', '/files/..%2F..%2Fetc%2Fpasswd', '/api/a/%2e%2e/b']) {
        const res = await send(gw.url, path);
        expect(res.status, path).toBe(400);
        expect(problemOf(res).code, path).toBe('RMP_REQUEST_MALFORMED');
      }
      expect(up.requests).toHaveLength(0);
    });
  });

  describe('switching rules off per route', () => {
    it('lets through what a rule switched off would refuse, and nothing more', async () => {
      const cases = [
        ['nosqlOperators', (gw: TestGateway) => postJson(gw, '{"a":{"$ne":1}}'), (gw: TestGateway) => send(gw.url, '/api/x?a[$ne]=1')],
        ['nulBytes', (gw: TestGateway) => send(gw.url, '/api/x?a=%00'), (gw: TestGateway) => postJson(gw, '{"a":"\\u0000"}')],
        ['crlf', (gw: TestGateway) => send(gw.url, '/api/x?a=%0d%0a'), (gw: TestGateway) => send(gw.url, '/files/a%0Ab')],
        ['pathTraversal', (gw: TestGateway) => send(gw.url, '/files/a%252Fb'), (gw: TestGateway) => send(gw.url, '/files/%252e%252e')],
      ] as const;
      for (const [rule, ...requests] of cases) {
        const { gw: on, up: upOn } = await setup();
        const { gw: off, up: upOff } = await setup({}, { [rule]: false });
        for (const request of requests) {
          expect((await request(on)).status, `${rule} on`).toBe(400);
          expect((await request(off)).status, `${rule} off`).toBe(200);
        }
        expect(upOn.requests).toHaveLength(0);
        expect(upOff.requests).toHaveLength(requests.length);
        // The other rules still apply on that route.
        const other = rule === 'nulBytes' ? send(off.url, '/api/x?a[$ne]=1') : send(off.url, '/api/x?a=%00&b[$ne]=1');
        expect((await other).status, `${rule} off, another rule`).toBe(400);
      }
    });

    it('is off entirely with inspect: false', async () => {
      const { gw, up } = await setup({}, false);
      expectForwarded(await postJson(gw, '{"a":{"$where":"1"},"b":"\\u0000"}'), up, '/api/x', '{"a":{"$where":"1"},"b":"\\u0000"}');
      expectForwarded(await send(gw.url, '/files/%252e%252e?a=%0d%0a'), up, '/files/%252e%252e?a=%0d%0a');
    });
  });

  describe('refusals', () => {
    it('lists every problem (up to 10) without echoing a value, and records one input_validation_fail event', async () => {
      const { gw, up } = await setup();
      const res = await send(gw.url, '/api/x?a=%00secret-token&b[$ne]=1', { method: 'POST', body: '{"x":{"$ne":"hunter2"}}', headers: json });
      const errors = expectRejected(res, ['/query/a', '/query/b[$ne]']);
      expect(problemOf(res).detail).toBe('2 inputs are not accepted; see errors.');
      expect(errors.map((e) => e.detail)).toEqual([NUL, QUERY_OPERATOR]);
      expect(res.text).not.toContain('secret-token');
      const event = await gw.logs.waitFor((l) => l.type === 'event' && String(l.event).startsWith('input_validation_fail'));
      expect(event).toMatchObject({ eventLevel: 'WARN', route: 'api', data: { rule: 'nulBytes', pointer: '/query/a', count: 2 } });
      const events = gw.logs.lines.filter((l) => l.type === 'event' && String(l.event).startsWith('input_validation_fail'));
      expect(events).toHaveLength(1);
      expect(JSON.stringify(events)).not.toContain('secret-token');
      // A body problem alone is found once the URL is clean.
      expectRejected(await postJson(gw, '{"x":{"$ne":"hunter2"}}'), ['/body/x/$ne']);
      expect(up.requests).toHaveLength(0);
    });

    it('stops at 10 problems for a body full of operators, and stays quick on hostile shapes', async () => {
      const { gw, up } = await setup();
      const many = JSON.stringify(Array.from({ length: 10_000 }, () => ({ $ne: 1 })));
      const started = performance.now();
      const errors = expectRejected(await postJson(gw, many), Array.from({ length: 10 }, (_, i) => `/body/${i}/$ne`));
      expect(errors).toHaveLength(10);
      // 31 levels of nesting (within limits' 32) with the operator at the bottom.
      const deep = '{"a":'.repeat(30) + '{"$gt":1}' + '}'.repeat(30);
      expectRejected(await postJson(gw, deep), [`/body${'/a'.repeat(30)}/$gt`]);
      // A huge key is cut in the pointer; a key with a NUL and control characters is shown without them.
      const long = `{"$${'x'.repeat(5000)}":1}`;
      const { gw: strict } = await setup({ anyDollarKey: true });
      expectRejected(await postJson(strict, long), [`/body/$${'x'.repeat(127)}…`]);
      expectRejected(await postJson(gw, '{"a\\u0000\\r\\n\\u001b[31m":1}'), ['/body/a\ufffd\ufffd\ufffd\ufffd[31m']);
      // Quotes and backslashes inside strings do not make keys of values, nor hide keys.
      const tricky = '{"a":"\\"$ne\\":1","b\\\\":{"$gt":1},"c":"\\\\\\"$where"}';
      expectRejected(await postJson(gw, tricky), ['/body/b\\/$gt']);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(up.requests).toHaveLength(0);
      // A benign body of about 1 MiB full of `$` and escapes passes whole.
      const big = JSON.stringify({ items: Array.from({ length: 8_000 }, (_, i) => ({ price: `$${i}`, text: 'a\nb "q" \\ c \u0001 日本'.repeat(3) })) });
      expect(Buffer.byteLength(big)).toBeGreaterThan(800 * 1024);
      expect(Buffer.byteLength(big)).toBeLessThan(1024 * 1024);
      expectForwarded(await postJson(gw, big), up, '/api/x', big);
    });
  });

  describe('form bodies', () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const postForm = (gw: TestGateway, body: string) => send(gw.url, '/api/login', { method: 'POST', body, headers: form });

    it('checks names and values as the query is checked, reading the body within maxBody and forwarding those bytes', async () => {
      const { gw, up } = await setup({ crlfFields: ['filename'] });
      expect(expectRejected(await postForm(gw, 'user=alice&password[$ne]=x'), ['/body/password[$ne]'])[0]!.detail).toBe(QUERY_OPERATOR);
      expectRejected(await postForm(gw, 'user=alice&password%5B%24gt%5D='), ['/body/password[$gt]']);
      expectRejected(await postForm(gw, 'a=x%00y'), ['/body/a']);
      expect(expectRejected(await postForm(gw, 'filename=a%0D%0Ab'), ['/body/filename'])[0]!.detail).toBe(CRLF_FIELD);
      const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
      const chunked = await sendRaw(gw.url, `POST /api/c HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('user[$')}${chunk('ne]=1')}0\r\n\r\n`);
      expect(chunked).toMatch(/^HTTP\/1\.1 400 /);
      expect(chunked).toContain('"pointer":"/body/user[$ne]"');
      expect(up.requests).toHaveLength(0);
      // Free text with newlines and `$` in values pass, byte for byte.
      const body = 'comment=line+one%0D%0Aline+two&price=%245&note=$ne&filename=report.pdf';
      expectForwarded(await postForm(gw, body), up, '/api/login', body);
      const { gw: small } = await setup({ maxBody: '1KiB' });
      const large = await postForm(small, `a=${'x'.repeat(1100)}`);
      expect(large.status).toBe(413);
      expect(problemOf(large).code).toBe('RMP_BODY_TOO_LARGE');
    });
  });

  describe('with limits off on the route', () => {
    it('reads and parses the JSON body itself, checks it and forwards the very bytes', async () => {
      const { gw, up } = await setup({ maxBody: '1KiB' });
      expectRejected(await postJson(gw, '{"a":{"$ne":1}}', '/raw/x'), ['/body/a/$ne']);
      const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
      const chunked = await sendRaw(gw.url, `POST /raw/c HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('{"a":{"$')}${chunk('where":"1"}}')}0\r\n\r\n`);
      expect(chunked).toMatch(/^HTTP\/1\.1 400 /);
      expect(chunked).toContain('"pointer":"/body/a/$where"');
      expect(up.requests).toHaveLength(0);
      const body = '{ "a" : "$ne", "b": "line\\nbreak" }';
      expectForwarded(await postJson(gw, body, '/raw/x'), up, '/raw/x', body);
      const invalid = await postJson(gw, '{"a":', '/raw/x');
      expect(invalid.status).toBe(400);
      expect(problemOf(invalid).code).toBe('RMP_JSON_INVALID');
      const large = await postJson(gw, JSON.stringify({ a: 'x'.repeat(1100) }), '/raw/x');
      expect(large.status).toBe(413);
      expect(problemOf(large).code).toBe('RMP_BODY_TOO_LARGE');
      // Not JSON: not read, streamed through untouched.
      expectForwarded(await send(gw.url, '/raw/t', { method: 'POST', body: '{"$ne":1}' + 'x'.repeat(2000), headers: { 'content-type': 'text/plain' } }), up, '/raw/t', '{"$ne":1}' + 'x'.repeat(2000));
      expect(up.requests).toHaveLength(2);
    });
  });
});
