import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { closeAfterEach, closedPort, type TestUpstream } from '../../../test/helpers/gateway.js';
import { problemOf, send, type Response } from '../../../test/helpers/http.js';

const use = closeAfterEach(afterEach);

// v1 is deprecated on 2026-06-01 and retired on 2027-03-01 12:00 UTC; the clock is set per test.
const DEPRECATED = '2026-06-01T00:00:00Z';
const SUNSET = '2027-03-01T12:00:00Z';
const BEFORE_DEPRECATION = '2026-05-01T00:00:00Z';
const DEPRECATED_PERIOD = '2026-12-01T00:00:00Z';
const AFTER_SUNSET = '2027-03-01T12:00:01Z';

const DEPRECATION_HEADER = '@1780272000';
const SUNSET_HEADER = 'Mon, 01 Mar 2027 12:00:00 GMT';
const DOCS = 'https://docs.example.com/migrate-to-v2';

beforeEach(() => {
  // Only Date is faked: sockets and timers run for real, the gateway's clock says what the test says.
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
});
afterEach(() => {
  vi.useRealTimers();
});

/** An upstream that says which one it is, and sends a Link of its own on `/…/paged`. */
async function upstream(name: string): Promise<TestUpstream> {
  return use.upstream((req, res) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (req.url!.endsWith('/paged')) headers.link = '</api/v1/items?page=2>; rel="next"';
    if (req.url!.endsWith('/missing')) {
      res.writeHead(404, headers);
      return res.end('{"error":"no such item"}');
    }
    res.writeHead(200, headers);
    res.end(JSON.stringify({ upstream: name, url: req.url }));
  });
}

async function prefixGateway(policies: Record<string, unknown> = {}) {
  const v1 = await upstream('v1');
  const v2 = await upstream('v2');
  const gw = await use.gateway({
    versions: {
      v1: { prefix: '/api/v1', deprecated: DEPRECATED, sunset: SUNSET, successor: 'v2', link: DOCS },
      v2: { prefix: '/api/v2' },
    },
    upstreams: { v1: { targets: [{ url: v1.url }] }, v2: { targets: [{ url: v2.url }] }, down: { targets: [{ url: `http://127.0.0.1:${await closedPort()}` }], retries: 0 } },
    routes: [
      { name: 'items-v1', version: 'v1', match: { path: '/api/v1/items/*' }, upstream: 'v1', policies },
      { name: 'people-v1', version: 'v1', match: { path: '/api/v1/people/:id' }, successorPath: '/api/v2/persons/:id', upstream: 'v1', policies },
      { name: 'things-v1', version: 'v1', match: { path: '/api/v1/things/*' }, successorPath: '/api/v2/items/*', upstream: 'v1', policies },
      { name: 'down-v1', version: 'v1', match: { path: '/api/v1/down' }, upstream: 'down', policies },
      { name: 'only-v1', version: 'v1', match: { path: '/api/v1/legacy' }, upstream: 'v1', policies },
      { name: 'items-v2', version: 'v2', match: { path: '/api/v2/items/*' }, upstream: 'v2' },
      { name: 'persons-v2', version: 'v2', match: { path: '/api/v2/persons/:id' }, upstream: 'v2' },
    ],
  });
  return { gw, v1, v2 };
}

function expectDeprecated(res: Response, successor: string | undefined, label = ''): void {
  expect(res.headers.deprecation, label).toBe(DEPRECATION_HEADER);
  expect(res.headers.sunset, label).toBe(SUNSET_HEADER);
  expect(res.headers.link, label).toBe(`${successor === undefined ? '' : `<${successor}>; rel="successor-version", `}<${DOCS}>; rel="deprecation"`);
}

describe('versioning policy: path-prefix versions', () => {
  it('sends Deprecation, Sunset and Link (successor, deprecation) on every response of a deprecated version, none on its successor', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw, v1, v2 } = await prefixGateway();
    const ok = await send(gw.url, '/api/v1/items/42?full=1');
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ upstream: 'v1', url: '/api/v1/items/42?full=1' });
    // The successor is the same path under v2's prefix (a v2 route serves it); the query is not part of it.
    expectDeprecated(ok, '/api/v2/items/42');
    // An explicit template with the match's parameters.
    expectDeprecated(await send(gw.url, '/api/v1/people/7'), '/api/v2/persons/7');
    expectDeprecated(await send(gw.url, '/api/v1/things/a/b%2Fc'), '/api/v2/items/a/b%2Fc');
    // No route of v2 serves /api/v2/legacy: no successor-version link, the rest stays.
    expectDeprecated(await send(gw.url, '/api/v1/legacy'), undefined);

    const current = await send(gw.url, '/api/v2/items/42');
    expect(current.status).toBe(200);
    expect(current.json()).toMatchObject({ upstream: 'v2' });
    for (const name of ['deprecation', 'sunset', 'link']) expect(current.headers[name], name).toBeUndefined();
    expect(v1.requests).toHaveLength(4);
    expect(v2.requests).toHaveLength(1);
    // The access log says who still calls the deprecated version.
    const logged = await gw.logs.waitFor((l) => l.type === 'access' && l.path === '/api/v1/items/42?full=1');
    expect(logged).toMatchObject({ route: 'items-v1', version: 'v1', deprecated: true, status: 200 });
    const successorLine = await gw.logs.waitFor((l) => l.type === 'access' && l.path === '/api/v2/items/42');
    expect(successorLine).toMatchObject({ route: 'items-v2', version: 'v2' });
    expect(successorLine).not.toHaveProperty('deprecated');
  });

  it('sends them on error responses too: the upstream\'s own, and the gateway\'s problems', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw } = await prefixGateway();
    const missing = await send(gw.url, '/api/v1/items/missing');
    expect(missing.status).toBe(404);
    expectDeprecated(missing, '/api/v2/items/missing', 'upstream 404');
    const down = await send(gw.url, '/api/v1/down');
    expect(problemOf(down).code).toBe('RMP_UPSTREAM_UNAVAILABLE');
    expectDeprecated(down, undefined, 'gateway 502');
    const tooLarge = await send(gw.url, '/api/v1/items/x', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1024 * 1024 + 1) });
    expect(problemOf(tooLarge).code).toBe('RMP_BODY_TOO_LARGE');
    expectDeprecated(tooLarge, '/api/v2/items/x', 'gateway 413');
  });

  it('keeps the upstream\'s own Link header and adds its items after it', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw } = await prefixGateway();
    const res = await send(gw.url, '/api/v1/items/paged');
    expect(res.headers.link).toBe(`</api/v1/items?page=2>; rel="next", </api/v2/items/paged>; rel="successor-version", <${DOCS}>; rel="deprecation"`);
  });

  it('announces a deprecation that has not started yet (RFC 9745 allows a future date)', async () => {
    vi.setSystemTime(new Date(BEFORE_DEPRECATION));
    const { gw, v1 } = await prefixGateway();
    const res = await send(gw.url, '/api/v1/items/1');
    expect(res.status).toBe(200);
    expectDeprecated(res, '/api/v2/items/1');
    expect(v1.requests).toHaveLength(1);
  });

  it('answers 410 RMP_VERSION_RETIRED from the sunset on, with the headers and the successor, and never calls the upstream', async () => {
    vi.setSystemTime(new Date(SUNSET).getTime() - 5000);
    const { gw, v1 } = await prefixGateway();
    expect((await send(gw.url, '/api/v1/items/1')).status).toBe(200);
    // The same gateway, a few seconds later: no reload needed.
    vi.setSystemTime(new Date(AFTER_SUNSET));
    for (const [path, successor] of [
      ['/api/v1/items/42', '/api/v2/items/42'],
      ['/api/v1/people/7', '/api/v2/persons/7'],
      ['/api/v1/legacy', undefined],
    ] as const) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const res = await send(gw.url, path, { method, headers: { authorization: 'Bearer whatever' } });
        expect(res.status, `${method} ${path}`).toBe(410);
        const problem = problemOf(res);
        expect(problem).toMatchObject({ status: 410, code: 'RMP_VERSION_RETIRED', version: 'v1', sunset: '2027-03-01T12:00:00.000Z', instance: path });
        expect(problem.successor).toBe(successor);
        expect(problem.detail).toBe(`This API version was retired on 2027-03-01T12:00:00.000Z${successor === undefined ? '' : `; its successor is at ${successor}`}.`);
        expectDeprecated(res, successor, `${method} ${path}`);
      }
    }
    expect(v1.requests).toHaveLength(1);
    // Its successor goes on.
    expect((await send(gw.url, '/api/v2/items/42')).status).toBe(200);
  });

  it('keeps serving past the sunset with `retire: false`, still with the headers', async () => {
    vi.setSystemTime(new Date(AFTER_SUNSET));
    const { gw, v1 } = await prefixGateway({ versioning: { retire: false } });
    const res = await send(gw.url, '/api/v1/items/42');
    expect(res.status).toBe(200);
    expectDeprecated(res, '/api/v2/items/42');
    expect(v1.requests).toHaveLength(1);
  });

  it('is off for a route that says `versioning: false`', async () => {
    vi.setSystemTime(new Date(AFTER_SUNSET));
    const { gw } = await prefixGateway({ versioning: false });
    const res = await send(gw.url, '/api/v1/items/42');
    expect(res.status).toBe(200);
    for (const name of ['deprecation', 'sunset', 'link']) expect(res.headers[name], name).toBeUndefined();
  });

  it('percent-encodes what a Link header cannot carry raw', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw } = await prefixGateway();
    const res = await send(gw.url, '/api/v1/items/a"b>c%3C');
    expect(res.status).toBe(200);
    expect(res.headers.link).toBe(`</api/v2/items/a%22b%3Ec%3C>; rel="successor-version", <${DOCS}>; rel="deprecation"`);
  });
});

describe('versioning policy: versions chosen by header or media type', () => {
  const CORS = { origins: ['https://app.example.com'], allowHeaders: ['api-version'] };
  async function selectGateway(kind: 'header' | 'mediaType' | 'query', withDefault: boolean) {
    const one = await upstream('one');
    const two = await upstream('two');
    const select = (value: string) => (kind === 'header' ? { header: 'api-version', value } : kind === 'query' ? { query: 'api-version', value } : { mediaType: 'version', value });
    const gw = await use.gateway({
      versions: {
        one: { select: select('1'), deprecated: DEPRECATED, sunset: SUNSET, successor: 'two', link: DOCS },
        two: { select: select('2'), default: withDefault },
      },
      upstreams: { one: { targets: [{ url: one.url }] }, two: { targets: [{ url: two.url }] } },
      routes: [
        { name: 'items-1', version: 'one', match: { path: '/api/items/:id' }, upstream: 'one', policies: { cors: CORS } },
        { name: 'items-2', version: 'two', match: { path: '/api/items/:id' }, upstream: 'two', policies: { cors: CORS } },
        { name: 'other', match: { path: '/api/other' }, upstream: 'two' },
      ],
    });
    return { gw, one, two };
  }

  it('header: routes by the header, the default without one, 400 RMP_VERSION_UNKNOWN for another; Vary names the header', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw, one, two } = await selectGateway('header', true);
    const v1 = await send(gw.url, '/api/items/5', { headers: { 'api-version': '1' } });
    expect(v1.json()).toMatchObject({ upstream: 'one', url: '/api/items/5' });
    // The successor of a version chosen by header is the same path (with its header).
    expectDeprecated(v1, '/api/items/5');
    expect(v1.headers.vary).toMatch(/^api-version(, |$)/);
    const v2 = await send(gw.url, '/api/items/5', { headers: { 'api-version': ' 2 ' } });
    expect(v2.json()).toMatchObject({ upstream: 'two' });
    expect(v2.headers.deprecation).toBeUndefined();
    expect(v2.headers.link).toBeUndefined();
    expect(v2.headers.vary).toMatch(/^api-version(, |$)/);
    const none = await send(gw.url, '/api/items/5');
    expect(none.json()).toMatchObject({ upstream: 'two' });
    expect((await send(gw.url, '/api/other', { headers: { 'api-version': '7' } })).json()).toMatchObject({ upstream: 'two' });
    const before = one.requests.length + two.requests.length;
    for (const value of ['3', '1, 2', '01', 'v2', '__proto__', 'constructor', 'é', 'x'.repeat(500)]) {
      const res = await send(gw.url, '/api/items/5', { headers: { 'api-version': value } });
      expect(res.status, value).toBe(400);
      expect(problemOf(res)).toMatchObject({ code: 'RMP_VERSION_UNKNOWN', versions: ['1', '2'], detail: 'This path serves the versions 1, 2 (named in the api-version header).' });
    }
    expect(one.requests.length + two.requests.length).toBe(before);
  });

  it('header, no default: a request naming no version gets 400 RMP_VERSION_REQUIRED', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw, one, two } = await selectGateway('header', false);
    for (const headers of [{}, { 'api-version': '' }] as Record<string, string>[]) {
      const res = await send(gw.url, '/api/items/5', { headers });
      expect(res.status).toBe(400);
      expect(problemOf(res)).toMatchObject({ code: 'RMP_VERSION_REQUIRED', versions: ['1', '2'], detail: 'Name the version in the api-version header: one of 1, 2.' });
    }
    expect(one.requests.length + two.requests.length).toBe(0);
    expect((await send(gw.url, '/api/items/5', { headers: { 'api-version': '2' } })).json()).toMatchObject({ upstream: 'two' });
  });

  it('media type: routes by the Accept parameter (quoted, any case, best q), 400 for an unknown or a missing one', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw, one, two } = await selectGateway('mediaType', false);
    const pick = async (accept: string) => (await send(gw.url, '/api/items/5', { headers: { accept } })).json<{ upstream: string }>().upstream;
    expect(await pick('application/json; version=1')).toBe('one');
    expect(await pick('application/vnd.example+json;version="2"')).toBe('two');
    expect(await pick('application/json; VERSION=1')).toBe('one');
    expect(await pick('application/json; version=1; q=0.2, application/json; version=2')).toBe('two');
    expect(await pick('application/json; version=9, application/json; version=1; q=0.5')).toBe('one');
    expect(await pick('application/json; version=2; q=0, application/json; version=1; q=0.1')).toBe('one');
    // Regression accept-ranges-of-other-versions-forwarded: the upstream gets only the chosen
    // version's ranges, so one that reads the first range cannot serve the other version.
    expect(await pick('application/json; version=1; q=0.9, application/json; version=2, text/plain')).toBe('two');
    expect(two.requests.at(-1)!.headers.accept).toBe('application/json; version=2, text/plain');
    expect(await pick('application/json; version=1')).toBe('one');
    expect(one.requests.at(-1)!.headers.accept).toBe('application/json; version=1');
    const deprecated = await send(gw.url, '/api/items/5', { headers: { accept: 'application/json; version=1' } });
    expectDeprecated(deprecated, '/api/items/5');
    expect(deprecated.headers.vary).toMatch(/^accept(, |$)/);
    const before = one.requests.length + two.requests.length;
    for (const accept of ['application/json; version=3', 'application/json; version=']) {
      const res = await send(gw.url, '/api/items/5', { headers: { accept } });
      expect(res.status, accept).toBe(400);
      expect(problemOf(res)).toMatchObject({ code: 'RMP_VERSION_UNKNOWN', versions: ['1', '2'] });
    }
    for (const headers of [{}, { accept: 'application/json' }, { accept: '*/*' }, { accept: 'application/json; version=1; q=0' }] as Record<string, string>[]) {
      const res = await send(gw.url, '/api/items/5', { headers });
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expect(problemOf(res)).toMatchObject({
        code: 'RMP_VERSION_REQUIRED',
        detail: 'Name the version in the Accept header\'s "version" parameter (application/json; version=1): one of 1, 2.',
      });
    }
    expect(one.requests.length + two.requests.length).toBe(before);
  });

  it('query: routes by the query parameter (forwarded as is), links the successor with its parameter, refuses it given twice', async () => {
    vi.setSystemTime(new Date(DEPRECATED_PERIOD));
    const { gw, one, two } = await selectGateway('query', true);
    const v1 = await send(gw.url, '/api/items/5?api-version=1&x=y');
    expect(v1.json()).toEqual({ upstream: 'one', url: '/api/items/5?api-version=1&x=y' });
    expectDeprecated(v1, '/api/items/5?api-version=2');
    expect(v1.headers.vary ?? '').not.toMatch(/api-version|accept/i);
    expect((await send(gw.url, '/api/items/5?api-version=%31')).json()).toMatchObject({ upstream: 'one' });
    for (const query of ['?api-version=2', '', '?', '?api-version=', '?other=1']) {
      expect((await send(gw.url, `/api/items/5${query}`)).json(), query).toMatchObject({ upstream: 'two' });
    }
    const before = one.requests.length + two.requests.length;
    // Other spellings of the name (regression version-query-name-spelling): ASP.NET reads
    // `API-VERSION` as `api-version`, qs and PHP read `api-version[]`.
    for (const query of ['?api-version=3', '?api-version=1&api-version=1', '?api-version=1&api-version=2', '?api-version=%E0%A4%A', '?api-version=1%00', '?API-VERSION=1', '?api-version=2&api-version[]=1', '?Api-Version=2']) {
      const res = await send(gw.url, `/api/items/5${query}`);
      expect(res.status, query).toBe(400);
      expect(problemOf(res)).toMatchObject({ code: 'RMP_VERSION_UNKNOWN', versions: ['1', '2'], detail: 'This path serves the versions 1, 2 (named in the query parameter api-version (?api-version=1)).' });
    }
    expect(one.requests.length + two.requests.length).toBe(before);
  });

  it('a version chosen by header answers 410 after its sunset; the others go on', async () => {
    vi.setSystemTime(new Date(AFTER_SUNSET));
    const { gw, one, two } = await selectGateway('header', true);
    const res = await send(gw.url, '/api/items/5', { headers: { 'api-version': '1' } });
    expect(problemOf(res)).toMatchObject({ status: 410, code: 'RMP_VERSION_RETIRED', version: 'one', successor: '/api/items/5' });
    expectDeprecated(res, '/api/items/5');
    expect(one.requests).toHaveLength(0);
    expect((await send(gw.url, '/api/items/5')).json()).toMatchObject({ upstream: 'two' });
    expect(two.requests).toHaveLength(1);
  });

  it('a CORS preflight to a shared path is answered without naming a version', async () => {
    const { gw } = await selectGateway('header', false);
    const res = await send(gw.url, '/api/items/5', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'api-version' },
    });
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });
});
