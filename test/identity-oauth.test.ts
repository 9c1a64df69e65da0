import { afterEach, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { startUpstream, type TestUpstream } from './helpers/gateway.js';
import { adminToken, postgresAvailable, startIdentityGateway, userToken, type IdentityGateway, type Reply } from './helpers/identity.js';

/**
 * The OAuth endpoints (issue 7, items 2–4): client credentials (RFC 6749 §4.4) with secrets and
 * private_key_jwt (RFC 7523), revocation (RFC 7009) and introspection (RFC 7662), over HTTPS
 * through the gateway. Each check names the section it holds the server to.
 */
const pgUp = await postgresAvailable();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const ISSUER = 'https://localhost';
const SECRET = /^rmpcs_live_[0-9A-Za-z]{49}$/;

async function setup(backend: 'sqlite' | 'postgres', identity: Record<string, unknown> = {}): Promise<{ id: IdentityGateway; upstream: TestUpstream; admin: string }> {
  const upstream = await startUpstream();
  open.push(upstream);
  const id = await startIdentityGateway({
    backend,
    identity: { scopes: { user: ['notes:read', 'notes:write'], admin: ['notes:read', 'notes:write', 'reports:read'] }, ...identity },
    upstreams: { notes: { targets: [{ url: upstream.url }] } },
    routes: [{ name: 'notes', match: { path: '/api/notes/*' }, upstream: 'notes', policies: { jwt: { identity: true }, 'api-key': { identity: true } } }],
  });
  open.push(id);
  return { id, upstream, admin: await adminToken(id) };
}

const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A form POST (the OAuth endpoints take nothing else). */
function post(id: IdentityGateway, path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Reply> {
  return id.call('POST', path, { body: new URLSearchParams(params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
}

async function register(id: IdentityGateway, admin: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const made = await id.call('POST', '/api/v1/clients', { token: admin, json: body });
  expect(made.status, made.text).toBe(201);
  return made.json<{ id: string; secret: string }>();
}

const oauthError = (r: Reply) => [r.status, r.json<{ error: string }>().error];

for (const backend of ['sqlite', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !pgUp)(`OAuth endpoints on ${backend}`, () => {
    it('client credentials: a token for a subset of the ceiling with sub client:<id>; refused outside it; invalid_client with a challenge; the 11th wrong secret in a minute is throttled', async () => {
      const { id, upstream, admin } = await setup(backend);
      const billing = await register(id, admin, { id: 'billing', name: 'Billing service', scopes: ['notes:read', 'notes:write'] });
      expect(billing.secret).toMatch(SECRET);

      // §4.4.2/§4.4.3: the token response, never cached (§5.1), with no refresh token.
      const granted = await post(id, '/oauth/token', { grant_type: 'client_credentials', scope: 'notes:read' }, { authorization: basic('billing', billing.secret) });
      expect(granted.status, granted.text).toBe(200);
      expect(granted.headers['cache-control']).toBe('no-store');
      expect(granted.headers.pragma).toBe('no-cache');
      expect(granted.headers['content-type']).toMatch(/^application\/json/);
      const body = granted.json<{ access_token: string; token_type: string; expires_in: number; scope: string; refresh_token?: string }>();
      expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'notes:read' });
      expect(body.refresh_token).toBeUndefined();
      expect(decodeProtectedHeader(body.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'EdDSA' });
      expect(decodeJwt(body.access_token)).toMatchObject({ sub: 'client:billing', client_id: 'billing', scope: 'notes:read', iss: ISSUER, aud: ISSUER });

      // The gateway takes it; the upstream sees a client, never a user.
      expect((await id.call('GET', '/api/notes/1', { token: body.access_token })).status).toBe(200);
      expect(upstream.requests.at(-1)!.headers).toMatchObject({ 'x-consumer-id': 'client:billing', 'x-consumer-type': 'client', 'x-consumer-scopes': 'notes:read' });

      // No scope asked: the whole ceiling. A scope outside it: invalid_scope (§5.2), nothing issued.
      expect((await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('billing', billing.secret) })).json().scope).toBe('notes:read notes:write');
      expect(oauthError(await post(id, '/oauth/token', { grant_type: 'client_credentials', scope: 'notes:read reports:read' }, { authorization: basic('billing', billing.secret) }))).toEqual([400, 'invalid_scope']);
      // §5.2 unsupported_grant_type; the password grant does not exist here.
      expect(oauthError(await post(id, '/oauth/token', { grant_type: 'password', username: 'a', password: 'b' }, { authorization: basic('billing', billing.secret) }))).toEqual([400, 'unsupported_grant_type']);
      expect(oauthError(await post(id, '/oauth/token', {}, { authorization: basic('billing', billing.secret) }))).toEqual([400, 'invalid_request']);

      // §5.2 invalid_client: 401 and WWW-Authenticate; unknown client and wrong secret alike.
      const wrong = await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('billing', 'rmpcs_live_' + 'x'.repeat(49)) });
      const unknown = await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('nobody', billing.secret) });
      for (const r of [wrong, unknown]) {
        expect(oauthError(r)).toEqual([401, 'invalid_client']);
        expect(r.headers['www-authenticate']).toBe('Basic realm="rampart", charset="UTF-8"');
        expect(r.headers['cache-control']).toBe('no-store');
      }
      expect(wrong.json()).toEqual(unknown.json());

      // Brute force: ten failures for a client in a minute, then 429 with Retry-After, even for the right secret.
      const target = await register(id, admin, { id: 'target', name: 'Target', scopes: ['notes:read'] });
      const answers: number[] = [];
      for (let i = 0; i < 11; i++) answers.push((await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('target', `wrong-${i}`) })).status);
      expect(answers).toEqual([...Array(10).fill(401), 429]);
      const throttled = await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('target', target.secret) });
      expect(oauthError(throttled)).toEqual([429, 'temporarily_unavailable']);
      expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Another client is not affected.
      expect((await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('billing', billing.secret) })).status).toBe(200);

      // Audited with OWASP names; no secret or token in the trail.
      await id.gw.runtime.identity!.audit.flush();
      const audit = await id.gw.runtime.identity!.storage.db.selectFrom('audit_events').selectAll().execute();
      const types = new Set(audit.map((e) => e.type));
      for (const t of ['client_created', 'authn_token_created', 'authn_login_fail', 'authn_login_fail_max', 'authz_fail']) expect(types, t).toContain(t);
      expect(audit.find((e) => e.type === 'authn_token_created' && e.actor === 'client:billing')).toBeDefined();
      const trail = JSON.stringify(audit);
      for (const secret of [billing.secret, target.secret, body.access_token]) expect(trail).not.toContain(secret);
    });

    it('client authentication per RFC 6749 §2.3: one method per request, the registered one, credentials only in the form body', async () => {
      const { id, admin } = await setup(backend);
      const posted = await register(id, admin, { id: 'poster', name: 'Posts its secret', scopes: ['notes:read'], authMethod: 'client_secret_post' });
      const basicOne = await register(id, admin, { id: 'basic-one', name: 'Basic', scopes: ['notes:read'] });
      const grant = { grant_type: 'client_credentials' };
      expect((await post(id, '/oauth/token', { ...grant, client_id: 'poster', client_secret: posted.secret })).status).toBe(200);
      // The method a client registered is the only one it may use.
      expect(oauthError(await post(id, '/oauth/token', grant, { authorization: basic('poster', posted.secret) }))).toEqual([401, 'invalid_client']);
      expect(oauthError(await post(id, '/oauth/token', { ...grant, client_id: 'basic-one', client_secret: basicOne.secret }))).toEqual([401, 'invalid_client']);
      // §2.3: "MUST NOT use more than one authentication method in each request."
      expect(oauthError(await post(id, '/oauth/token', { ...grant, client_id: 'basic-one', client_secret: basicOne.secret }, { authorization: basic('basic-one', basicOne.secret) }))).toEqual([400, 'invalid_request']);
      // §2.3.1: parameters "MUST NOT be included in the request URI"; §3.2 "MUST NOT be included more than once".
      const inUrl = await id.call('POST', `/oauth/token?client_id=poster&client_secret=${posted.secret}`, { body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(oauthError(inUrl)).toEqual([400, 'invalid_request']);
      expect(oauthError(await id.call('POST', '/oauth/token', { body: 'grant_type=client_credentials&grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('basic-one', basicOne.secret) } }))).toEqual([400, 'invalid_request']);
      // §4.4.2: application/x-www-form-urlencoded only.
      expect(oauthError(await id.call('POST', '/oauth/token', { json: { grant_type: 'client_credentials' }, headers: { authorization: basic('basic-one', basicOne.secret) } }))).toEqual([400, 'invalid_request']);
      expect(oauthError(await post(id, '/oauth/token', grant))).toEqual([401, 'invalid_client']);
      expect(oauthError(await post(id, '/oauth/token', grant, { authorization: 'Bearer abc' }))).toEqual([401, 'invalid_client']);
      // A body past 16 KiB is refused in the same format (the error keeps its status).
      const huge = await post(id, '/oauth/token', { ...grant, pad: 'x'.repeat(20_000) }, { authorization: basic('basic-one', basicOne.secret) });
      expect(oauthError(huge)).toEqual([413, 'invalid_request']);
      // Credentials encoded per Appendix B (a client id with "%" and ":"-free form encoding).
      expect((await post(id, '/oauth/token', grant, { authorization: basic('basic-one', basicOne.secret) })).status).toBe(200);
    });

    it('secret rotation with an overlap window; a revoked secret or a disabled client stops at once, and the client\'s tokens with it', async () => {
      const { id, admin } = await setup(backend);
      const first = await register(id, admin, { id: 'rotor', name: 'Rotates', scopes: ['notes:read'] });
      const token = (secret: string) => post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('rotor', secret) });
      const rotated = await id.call('POST', '/api/v1/clients/rotor/secrets', { token: admin, json: { overlap: '1h' } });
      expect(rotated.status).toBe(201);
      const second = rotated.json<{ secret: string; secretId: string; previousExpireAt: string }>();
      expect(second.secret).toMatch(SECRET);
      expect(Date.parse(second.previousExpireAt) - Date.now()).toBeGreaterThan(59 * 60_000);
      // Both work during the overlap.
      expect((await token(first.secret)).status).toBe(200);
      expect((await token(second.secret)).status).toBe(200);
      const listed = (await id.call('GET', '/api/v1/clients/rotor', { token: admin })).json<{ secrets: { status: string }[] }>();
      expect(listed.secrets.map((s) => s.status)).toEqual(['expiring', 'active']);
      expect(JSON.stringify(listed)).not.toContain(second.secret);
      // Rotating with no overlap ends every older secret now.
      const third = (await id.call('POST', '/api/v1/clients/rotor/secrets', { token: admin, json: { overlap: '0s' } })).json<{ secret: string; secretId: string }>();
      expect(oauthError(await token(first.secret))).toEqual([401, 'invalid_client']);
      expect(oauthError(await token(second.secret))).toEqual([401, 'invalid_client']);
      expect((await token(third.secret)).status).toBe(200);
      // A leaked secret is revoked on its own.
      expect((await id.call('DELETE', `/api/v1/clients/rotor/secrets/${third.secretId}`, { token: admin })).status).toBe(204);
      expect(oauthError(await token(third.secret))).toEqual([401, 'invalid_client']);

      // Disabling a client: its live tokens are refused at the gateway, and it gets no more.
      const fourth = (await id.call('POST', '/api/v1/clients/rotor/secrets', { token: admin, json: {} })).json<{ secret: string }>();
      const live = (await token(fourth.secret)).json<{ access_token: string }>().access_token;
      expect((await id.call('GET', '/api/notes/1', { token: live })).status).toBe(200);
      expect((await id.call('PATCH', '/api/v1/clients/rotor', { token: admin, json: { status: 'disabled' } })).status).toBe(200);
      const refused = await id.call('GET', '/api/notes/1', { token: live });
      expect([refused.status, refused.json().code]).toEqual([401, 'RMP_AUTH_TOKEN_REVOKED']);
      expect(oauthError(await token(fourth.secret))).toEqual([401, 'invalid_client']);

      // Management is for admins; a ceiling wider than the admin's own scopes is refused.
      const user = await userToken(id, 'ada@example.com');
      expect((await id.call('GET', '/api/v1/clients', { token: user.token })).status).toBe(403);
      const wide = await id.call('POST', '/api/v1/clients', { token: admin, json: { name: 'Too wide', scopes: ['payments:write'] } });
      expect([wide.status, wide.json().code, wide.json().scopes]).toEqual([403, 'RMP_SCOPE_EXCEEDED', ['payments:write']]);
      const taken = await id.call('POST', '/api/v1/clients', { token: admin, json: { id: 'rotor', name: 'Again', scopes: [] } });
      expect([taken.status, taken.json().code]).toEqual([409, 'RMP_CLIENT_EXISTS']);
      const firstParty = await id.call('POST', '/api/v1/clients', { token: admin, json: { id: 'rampart', name: 'Impostor', scopes: [] } });
      expect(firstParty.status).toBe(400);
      expect((await id.call('DELETE', '/api/v1/clients/rotor', { token: admin })).status).toBe(204);
      expect((await id.call('GET', '/api/v1/clients/rotor', { token: admin })).status).toBe(404);
    });

    it('private_key_jwt (RFC 7523): a signed assertion authenticates once; replayed, wrong audience, too long-lived, HMAC or another key: invalid_client', async () => {
      const { id, admin } = await setup(backend);
      const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
      const leaked = await id.call('POST', '/api/v1/clients', { token: admin, json: { id: 'signer', name: 'Signs', scopes: ['notes:read'], authMethod: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'k1' }] } } });
      expect([leaked.status, leaked.json().code]).toEqual([400, 'RMP_VALIDATION_FAILED']);
      const made = await id.call('POST', '/api/v1/clients', { token: admin, json: { id: 'signer', name: 'Signs', scopes: ['notes:read'], authMethod: 'private_key_jwt', jwks: { keys: [jwk] } } });
      expect(made.status).toBe(201);
      expect(made.json()).not.toHaveProperty('secret');
      const assertion = (o: { aud?: string; exp?: number; key?: Parameters<SignJWT["sign"]>[0]; alg?: string } = {}) =>
        new SignJWT({})
          .setProtectedHeader({ alg: o.alg ?? 'ES256', kid: 'k1' })
          .setIssuer('signer')
          .setSubject('signer')
          .setAudience(o.aud ?? `${ISSUER}/oauth/token`)
          .setIssuedAt()
          .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 60)
          .setJti(randomUUID())
          .sign(o.key ?? privateKey);
      const withAssertion = (jwt: string) => post(id, '/oauth/token', { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt });
      const good = await assertion();
      const granted = await withAssertion(good);
      expect(granted.status, granted.text).toBe(200);
      expect(decodeJwt(granted.json<{ access_token: string }>().access_token).sub).toBe('client:signer');
      // §3 item 7: single use.
      expect(oauthError(await withAssertion(good))).toEqual([401, 'invalid_client']);
      expect(oauthError(await withAssertion(await assertion({ aud: 'https://elsewhere.example' })))).toEqual([401, 'invalid_client']);
      expect(oauthError(await withAssertion(await assertion({ exp: Math.floor(Date.now() / 1000) + 3600 })))).toEqual([401, 'invalid_client']);
      expect(oauthError(await withAssertion(await assertion({ exp: Math.floor(Date.now() / 1000) - 120 })))).toEqual([401, 'invalid_client']);
      expect(oauthError(await withAssertion(await assertion({ alg: 'HS256', key: new TextEncoder().encode('a'.repeat(32)) })))).toEqual([401, 'invalid_client']);
      const other = await generateKeyPair('ES256');
      expect(oauthError(await withAssertion(await assertion({ key: other.privateKey })))).toEqual([401, 'invalid_client']);
      expect((await withAssertion(await assertion({ aud: ISSUER }))).status).toBe(200);
    });

    it('revocation (RFC 7009): own tokens only, 200 for unknown ones; the first-party public client revokes refresh tokens and API keys; the gateway refuses a revoked token on the next request', async () => {
      const { id, admin } = await setup(backend);
      const a = await register(id, admin, { id: 'client-a', name: 'A', scopes: ['notes:read'] });
      const b = await register(id, admin, { id: 'client-b', name: 'B', scopes: ['notes:read'] });
      const tokenOf = async (c: string, secret: string) => (await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic(c, secret) })).json<{ access_token: string }>().access_token;
      const aToken = await tokenOf('client-a', a.secret);
      // §2.1: the client must authenticate.
      expect(oauthError(await post(id, '/oauth/revoke', { token: aToken }))).toEqual([401, 'invalid_client']);
      expect(oauthError(await post(id, '/oauth/revoke', { token: aToken, client_id: 'client-a' }))).toEqual([401, 'invalid_client']);
      // §2.1: "verifies whether the token was issued to the client making the revocation request".
      const foreign = await post(id, '/oauth/revoke', { token: aToken }, { authorization: basic('client-b', b.secret) });
      expect(oauthError(foreign)).toEqual([400, 'unauthorized_client']);
      expect((await id.call('GET', '/api/notes/1', { token: aToken })).status).toBe(200);
      // §2.2: 200 and the token is gone; the gateway refuses it on the next request.
      const revoked = await post(id, '/oauth/revoke', { token: aToken, token_type_hint: 'access_token' }, { authorization: basic('client-a', a.secret) });
      expect(revoked.status).toBe(200);
      expect(revoked.text).toBe('');
      expect(revoked.headers['cache-control']).toBe('no-store');
      expect((await id.call('GET', '/api/notes/1', { token: aToken })).json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
      // §2.2: "invalid tokens do not cause an error response"; a wrong hint does not matter (§2.1).
      for (const token of ['nonsense', 'a.b.c', aToken, 'rmp_live_' + 'A'.repeat(49)]) {
        expect((await post(id, '/oauth/revoke', { token, token_type_hint: 'refresh_token' }, { authorization: basic('client-a', a.secret) })).status, token).toBe(200);
      }
      expect(oauthError(await post(id, '/oauth/revoke', {}, { authorization: basic('client-a', a.secret) }))).toEqual([400, 'invalid_request']);

      // The first-party app is a public client: client_id=rampart, no secret. A refresh token ends its session (§2.1).
      await userToken(id, 'ada@example.com');
      const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: 'a long enough passphrase 7' } })).json<{ access_token: string; refresh_token: string }>();
      expect(oauthError(await post(id, '/oauth/revoke', { token: login.refresh_token }, { authorization: basic('client-a', a.secret) }))).toEqual([400, 'unauthorized_client']);
      expect((await post(id, '/oauth/revoke', { token: login.refresh_token, client_id: 'rampart' })).status).toBe(200);
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.refresh_token } })).status).toBe(401);
      expect((await id.call('GET', '/api/notes/1', { token: login.access_token })).status).toBe(401);
      // And an API key (a leaked key can be revoked by whoever holds it).
      const session = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: 'a long enough passphrase 7' } })).json<{ access_token: string }>();
      const key = (await id.call('POST', '/api/v1/api-keys', { token: session.access_token, json: { name: 'k' } })).json<{ key: string }>().key;
      expect((await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': key } })).status).toBe(200);
      expect((await post(id, '/oauth/revoke', { token: key, client_id: 'rampart' })).status).toBe(200);
      expect((await id.call('GET', '/api/notes/1', { headers: { 'x-api-key': key } })).json().code).toBe('RMP_AUTH_TOKEN_REVOKED');
    });

    it('introspection (RFC 7662): client authentication required; {"active":false} and nothing else for unknown, expired, revoked or foreign tokens', async () => {
      const { id, admin } = await setup(backend);
      const rs = await register(id, admin, { id: 'resource-server', name: 'RS', scopes: [], introspection: true });
      const a = await register(id, admin, { id: 'client-a', name: 'A', scopes: ['notes:read'] });
      const b = await register(id, admin, { id: 'client-b', name: 'B', scopes: ['notes:read'] });
      const introspect = (token: string, c: { id: string; secret: string }) => post(id, '/oauth/introspect', { token }, { authorization: basic(c.id, c.secret) });
      const aToken = (await post(id, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: basic('client-a', a.secret) })).json<{ access_token: string }>().access_token;
      const inactive = async (r: Reply) => {
        expect(r.status).toBe(200);
        expect(r.text).toBe('{"active":false}');
        expect(r.headers['cache-control']).toBe('no-store');
      };

      // §2.1: "the protected resource MUST also authenticate": none, the public first-party client, a wrong secret.
      expect(oauthError(await post(id, '/oauth/introspect', { token: aToken }))).toEqual([401, 'invalid_client']);
      expect(oauthError(await post(id, '/oauth/introspect', { token: aToken, client_id: 'rampart' }))).toEqual([401, 'invalid_client']);
      expect(oauthError(await introspect(aToken, { id: 'resource-server', secret: a.secret }))).toEqual([401, 'invalid_client']);

      // §2.2: an active token with its meta-information; a client sees its own tokens.
      const own = await introspect(aToken, { id: 'client-a', secret: a.secret });
      const claims = decodeJwt(aToken);
      expect(own.json()).toEqual({ active: true, token_type: 'Bearer', scope: 'notes:read', client_id: 'client-a', sub: 'client:client-a', aud: ISSUER, iss: ISSUER, exp: claims.exp, iat: Math.floor(claims.iat!), jti: claims.jti });
      // §4: a client without the introspection right learns nothing of another's token.
      await inactive(await introspect(aToken, { id: 'client-b', secret: b.secret }));
      // A resource server sees every kind: client tokens, users' access and refresh tokens, API keys.
      expect((await introspect(aToken, { id: 'resource-server', secret: rs.secret })).json()).toMatchObject({ active: true, client_id: 'client-a' });
      const ada = await userToken(id, 'ada@example.com');
      const login = (await id.call('POST', '/api/v1/auth/login', { json: { email: 'ada@example.com', password: 'a long enough passphrase 7' } })).json<{ access_token: string; refresh_token: string }>();
      expect((await introspect(login.access_token, rs)).json()).toMatchObject({ active: true, token_type: 'Bearer', sub: ada.id, client_id: 'rampart', scope: 'notes:read notes:write', roles: ['user'] });
      expect((await introspect(login.refresh_token, rs)).json()).toMatchObject({ active: true, token_type: 'refresh_token', sub: ada.id, client_id: 'rampart' });
      const key = (await id.call('POST', '/api/v1/api-keys', { token: ada.token, json: { name: 'k', scopes: ['notes:read'] } })).json<{ key: string }>().key;
      expect((await introspect(key, rs)).json()).toMatchObject({ active: true, token_type: 'api_key', sub: ada.id, scope: 'notes:read' });
      await inactive(await introspect(login.refresh_token, { id: 'client-a', secret: a.secret }));

      // Unknown, malformed, expired, revoked, spent, signed by someone else: {"active":false}, nothing more.
      const service = id.gw.runtime.identity!.service;
      const expired = (await service.tokens.issueForClient('client-a', 'notes:read', 60, Date.now() - 120_000)).token;
      const { privateKey } = await generateKeyPair('EdDSA');
      const forged = await new SignJWT({ client_id: 'client-a', scope: 'notes:read' }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: decodeProtectedHeader(aToken).kid! }).setIssuer(ISSUER).setAudience(ISSUER).setSubject('client:client-a').setJti(randomUUID()).setExpirationTime('5m').sign(privateKey);
      await post(id, '/oauth/revoke', { token: aToken }, { authorization: basic('client-a', a.secret) });
      await post(id, '/oauth/revoke', { token: key, client_id: 'rampart' });
      const spent = login.refresh_token;
      expect((await id.call('POST', '/api/v1/auth/refresh', { json: { refresh_token: spent } })).status).toBe(200);
      for (const token of ['nonsense', 'a.b.c', expired, forged, aToken, key, spent, 'rmp_live_' + 'A'.repeat(49)]) await inactive(await introspect(token, rs));
      expect(oauthError(await post(id, '/oauth/introspect', {}, { authorization: basic(rs.id, rs.secret) }))).toEqual([400, 'invalid_request']);
    });
  });
}
