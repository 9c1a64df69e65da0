import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { send } from '../../../test/helpers/http.js';
import { compileNames, redactJson } from './policy.js';
import { DEFAULT_REDACTED } from './schema.js';

const use = closeAfterEach(afterEach);

describe('redact: matching and walking', () => {
  const matches = compileNames(DEFAULT_REDACTED);

  it('matches names case-insensitively, ignoring _ and -, and nothing else', () => {
    for (const key of ['password', 'Password', 'PASSWORD', 'password_hash', 'passwordHash', 'api_key', 'API-KEY', 'apiKey', 'ApiKey', 'SSN', 'credit_card', '_token', 'Secret']) expect(matches(key), key).toBe(true);
    for (const key of ['passwords', 'passwordHint', 'accessTokenType', 'tokens', 'secretary', 'key', 'api', '', 'p', 'x'.repeat(100), '__proto__', 'constructor']) expect(matches(key), key).toBe(false);
  });

  it('removes at any depth, in arrays too, and reports JSON paths', () => {
    const doc = { a: [{ password: 1, b: [[{ token: 2 }]] }], 'odd key': { apiKey: 3 }, password: { nested: 'all of it goes' }, keep: 'x' };
    expect([...redactJson(doc, matches, false)].sort()).toEqual(['$.password', '$.a[0].password', '$.a[0].b[0][0].token', '$["odd key"].apiKey'].sort());
    expect(doc).toEqual({ a: [{ b: [[{}]] }], 'odd key': {}, keep: 'x' });
  });

  it('masks instead when asked, and changes nothing when nothing matches', () => {
    const doc = { user: { password: 'x' } };
    expect(redactJson(doc, matches, true)).toEqual(['$.user.password']);
    expect(doc).toEqual({ user: { password: '[REDACTED]' } });
    const clean = { a: [1, 'password', { b: null }] };
    expect(redactJson(clean, matches, false)).toEqual([]);
    expect(clean).toEqual({ a: [1, 'password', { b: null }] });
    for (const scalar of [null, 1, 'password', true]) expect(redactJson(scalar, matches, false)).toEqual([]);
  });

  it('walks 100 000 levels of nesting without recursion', () => {
    let doc: unknown = { password: 'deep' };
    for (let i = 0; i < 100_000; i++) doc = [doc];
    const paths = redactJson(doc, matches, false);
    expect(paths).toHaveLength(1);
    expect(paths[0]!.length).toBeLessThanOrEqual(256);
  });

  it('refuses a name that normalizes to nothing at config load', () => {
    expect(() => compileNames(['_'])).toThrow(/letter or digit/);
  });
});

describe('redact policy', () => {
  async function setup(policies: Record<string, unknown> = {}) {
    const up = await use.upstream((_req, res) => {
      const text = JSON.stringify({ id: 7, password: 'hunter2', session: { sessionToken: 's', token: 't' }, list: [{ internalId: 'i', pin: '1234' }] });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    return use.gateway({ upstreams: { app: { targets: [{ url: up.url }] } }, routes: [{ name: 'api', match: { path: '/api/*' }, upstream: 'app', policies }] });
  }

  it('is on by default, with one event per answer naming paths and count, never values', async () => {
    const gw = await setup();
    const res = await send(gw.url, '/api/x');
    expect(res.json()).toEqual({ id: 7, session: { sessionToken: 's' }, list: [{ internalId: 'i', pin: '1234' }] });
    const event = await gw.logs.waitFor((l) => l.event === 'response_redacted');
    expect(event).toMatchObject({ eventLevel: 'WARN', route: 'api', requestId: res.headers['x-request-id'], data: { filter: 'redact', count: 2, status: 200 } });
    expect(JSON.stringify(event)).not.toContain('hunter2');
    expect(gw.logs.lines.filter((l) => l.event === 'response_redacted')).toHaveLength(1);
  });

  it('adds names with fields, replaces the list with names, masks with mode: mask', async () => {
    const added = await setup({ redact: { fields: ['pin', 'session_token'] } });
    expect((await send(added.url, '/api/x')).json()).toEqual({ id: 7, session: {}, list: [{ internalId: 'i' }] });
    const replaced = await setup({ redact: { names: ['internal_id'], mode: 'mask' } });
    expect((await send(replaced.url, '/api/x')).json()).toEqual({ id: 7, password: 'hunter2', session: { sessionToken: 's', token: 't' }, list: [{ internalId: '[REDACTED]', pin: '1234' }] });
  });

  it('can be turned off per route', async () => {
    const gw = await setup({ redact: false });
    expect((await send(gw.url, '/api/x')).json()).toMatchObject({ password: 'hunter2' });
  });
});
