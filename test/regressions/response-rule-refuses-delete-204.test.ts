import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAfterEach } from '../helpers/gateway.js';
import { problemOf, send } from '../helpers/http.js';

/**
 * Found by `rampart scan --destructive` against the quickstart: on a route with an `authorize`
 * response rule (`response.body.ownerId == consumer.id`), DELETE answered 204 by the upstream
 * became 502 RMP_RESPONSE_CHECK_FAILED. The note was deleted all the same; its owner was told it
 * was not. A write answered with no content now passes; a read still fails closed.
 */

const use = closeAfterEach(afterEach);
const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('i').setAudience('a').setSubject(sub).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

describe('authorize response rules and answers without content', () => {
  it('DELETE → 204 reaches the owner (was 502); GET → 204 still fails closed; someone else\'s object is still a 404', async () => {
    const seen: string[] = [];
    const up = await use.upstream((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'DELETE' || req.url === '/api/empty') {
        res.writeHead(204);
        return void res.end();
      }
      const body = JSON.stringify({ ownerId: 'alice', title: 'mine' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
    const gw = await use.gateway({
      upstreams: { app: { targets: [{ url: up.url }] } },
      routes: [
        {
          name: 'note',
          match: { path: '/api/*', methods: ['GET', 'DELETE'] },
          upstream: 'app',
          policies: { jwt: { algorithms: ['HS256'], secret: SECRET, issuer: 'i', audience: 'a' }, authorize: { response: ['response.body.ownerId == consumer.id'] } },
        },
      ],
    });
    const alice = { authorization: `Bearer ${await token('alice')}` };
    const deleted = await send(gw.url, '/api/notes/1', { method: 'DELETE', headers: alice });
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const read = await send(gw.url, '/api/empty', { headers: alice });
    expect([read.status, problemOf(read).code]).toEqual([502, 'RMP_RESPONSE_CHECK_FAILED']);
    const theirs = await send(gw.url, '/api/notes/1', { headers: { authorization: `Bearer ${await token('bob')}` } });
    expect([theirs.status, problemOf(theirs).code]).toEqual([404, 'RMP_OBJECT_NOT_FOUND']);
    expect(seen).toEqual(['DELETE /api/notes/1', 'GET /api/empty', 'GET /api/notes/1']);
  });
});
