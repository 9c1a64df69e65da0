import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { closeAfterEach } from '../../../test/helpers/gateway.js';
import { problemOf, send } from '../../../test/helpers/http.js';
import { loadConfigText } from '../../config/load.js';
import { buildPipeline } from '../../gateway/pipeline.js';
import { createLogger } from '../../observability/logger.js';
import { createEvents } from '../../observability/events.js';
import type { ConfigError } from '../../config/errors.js';
import { formatIssue } from '../../config/errors.js';

/**
 * Object-level authorization from config, on a demo upstream holding two users' notes: by path
 * (a user's own collection), by response body (someone else's note is a 404 with none of its
 * bytes), function level (DELETE for admins only) and scopes.
 */

const use = closeAfterEach(afterEach);
const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const NOTES: Record<string, { id: string; ownerId: string; text: string }> = {
  n1: { id: 'n1', ownerId: 'alice', text: 'alice-private-text' },
  n2: { id: 'n2', ownerId: 'bob', text: 'bob-private-text' },
};

function tokenFor(sub: string, roles: string[] = ['user'], scope = 'notes:read') {
  return new SignJWT({ roles, scope })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://issuer.test')
    .setAudience('notes')
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
}

async function setup() {
  const up = await use.upstream((req, res) => {
    const byUser = /^\/users\/([^/]+)\/notes$/.exec(req.url!);
    const one = /^\/notes\/([^/]+)$/.exec(req.url!);
    let body: unknown = { error: 'not found' };
    let status = 404;
    if (byUser) [status, body] = [200, Object.values(NOTES).filter((n) => n.ownerId === byUser[1])];
    else if (one && NOTES[one[1]!]) [status, body] = [200, NOTES[one[1]!]];
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  const gw = await use.gateway({
    defaults: { jwt: { algorithms: ['HS256'], secret: SECRET, issuer: 'https://issuer.test', audience: 'notes' } },
    upstreams: { notes: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'user-notes',
        match: { path: '/api/users/:userId/notes', methods: ['GET'] },
        upstream: 'notes',
        stripPrefix: '/api',
        policies: { authorize: { allow: ["request.params.userId == consumer.id || 'admin' in consumer.roles"] } },
      },
      {
        name: 'note',
        match: { path: '/api/notes/:id', methods: ['GET', 'PUT', 'DELETE'] },
        upstream: 'notes',
        stripPrefix: '/api',
        policies: {
          authorize: {
            scopes: { any: ['notes:read', 'notes:admin'] },
            response: ["response.body.ownerId == consumer.id || 'admin' in consumer.roles"],
            methods: { DELETE: { roles: ['admin'] }, PUT: { scopes: { all: ['notes:write'] } } },
          },
        },
      },
    ],
  });
  return { gw, up };
}

const as = async (sub: string, roles?: string[], scope?: string) => ({ authorization: `Bearer ${await tokenFor(sub, roles, scope)}` });

describe('authorize policy', () => {
  it('ownership by path: each user lists only their own notes; an admin lists anyone\'s; refusals never reach the upstream', async () => {
    const { gw, up } = await setup();
    const own = await send(gw.url, '/api/users/alice/notes', { headers: await as('alice') });
    expect(own.status).toBe(200);
    expect(own.json<unknown[]>()).toHaveLength(1);
    const other = await send(gw.url, '/api/users/alice/notes', { headers: await as('bob') });
    expect(other.status).toBe(403);
    expect(problemOf(other).code).toBe('RMP_AUTHZ_DENIED');
    expect(other.text).not.toContain('alice-private-text');
    expect((await send(gw.url, '/api/users/alice/notes', { headers: await as('root', ['admin']) })).status).toBe(200);
    expect(up.requests.map((r) => r.url)).toEqual(['/users/alice/notes', '/users/alice/notes']);
    const event = await gw.logs.waitFor((l) => l.event === 'authz_fail:bob');
    expect(event).toMatchObject({ eventLevel: 'WARN', route: 'user-notes' });
  });

  it('ownership by response body: someone else\'s note is a 404 with none of its bytes', async () => {
    const { gw } = await setup();
    const mine = await send(gw.url, '/api/notes/n1', { headers: await as('alice') });
    expect(mine.status).toBe(200);
    expect(mine.json()).toEqual(NOTES.n1);
    const theirs = await send(gw.url, '/api/notes/n1', { headers: await as('bob') });
    expect(theirs.status).toBe(404);
    expect(problemOf(theirs).code).toBe('RMP_OBJECT_NOT_FOUND');
    expect(theirs.text).not.toContain('alice');
    expect(theirs.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    // A note that does not exist answers 404 as well: existence does not leak.
    const missing = await send(gw.url, '/api/notes/n9', { headers: await as('bob') });
    expect(missing.status).toBe(404);
    expect((await send(gw.url, '/api/notes/n2', { headers: await as('bob') })).json()).toEqual(NOTES.n2);
  });

  it('function level and scopes: DELETE only for admins, PUT needs notes:write, a token without read scope is refused', async () => {
    const { gw, up } = await setup();
    const del = await send(gw.url, '/api/notes/n1', { method: 'DELETE', headers: await as('alice') });
    expect(del.status).toBe(403);
    expect(problemOf(del).code).toBe('RMP_AUTHZ_DENIED');
    expect((await send(gw.url, '/api/notes/n1', { method: 'PUT', headers: await as('alice') })).status).toBe(403);
    expect((await send(gw.url, '/api/notes/n1', { headers: await as('alice', ['user'], 'profile') })).status).toBe(403);
    expect(up.requests).toHaveLength(0);
    expect((await send(gw.url, '/api/notes/n1', { method: 'DELETE', headers: await as('root', ['admin'], 'notes:admin') })).status).toBe(200);
  });

  it('compiles rules at load: a syntax error or an unknown name is a config error', () => {
    const logger = createLogger({ level: 'silent', destination: 'stderr' });
    const errorsOf = (rule: string) => {
      const yaml = `upstreams:\n  a:\n    targets: [{ url: "http://127.0.0.1:1" }]\nroutes:\n  - name: r\n    match: { path: /r/:id }\n    upstream: a\n    policies:\n      jwt: { algorithms: [HS256], secret: "${SECRET}", issuer: i, audience: a }\n      authorize:\n        allow: [${JSON.stringify(rule)}]\n`;
      try {
        buildPipeline(loadConfigText(yaml, 'rampart.yaml', '/tmp'), { logger, events: createEvents(logger) });
        return [];
      } catch (error) {
        return (error as ConfigError).issues.map(formatIssue);
      }
    };
    expect(errorsOf('request.params.id == consumer.id')).toEqual([]);
    expect(errorsOf('request.params.id ==')[0]).toMatch(/^rampart\.yaml:11:9: routes\[0\]\.policies\.authorize: policy 'authorize': CEL rule "request\.params\.id ==": /);
    expect(errorsOf('user.id == consumer.id')[0]).toContain("unknown name 'user' (expected request, consumer)");
    expect(errorsOf("consumer.roles.exists(r, r == 'admin')")).toEqual([]);
  });
});
