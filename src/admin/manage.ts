import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { JSONWebKeySet } from 'jose';
import { parseDuration } from '../config/units.js';
import { RampartError } from '../errors/problem.js';
import { CreateBody as ClientCreateBody, RotateBody as ClientRotateBody } from '../identity/client-routes.js';
import { Roles } from '../identity/routes.js';
import type { Actor } from '../identity/service.js';
import { emitAdminEvent, identityService, IdParam, principal, Text, type AdminApiDeps } from './api.js';
import { clientOf } from './auth.js';

const CreateUserBody = Type.Object({ email: Text(320), roles: Type.Optional(Roles), admin: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
const PatchUserBody = Type.Object(
  { roles: Type.Optional(Roles), status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])) },
  { additionalProperties: false, minProperties: 1 },
);
/** A signing key's id: an RFC 7638 thumbprint (43 base64url characters). */
const KidParam = Type.Object({ kid: Type.String({ pattern: '^[A-Za-z0-9_-]{1,100}$' }) }, { additionalProperties: false });

/**
 * The management half of the admin API (docs/admin-api.md): what `rampart users | apikeys |
 * clients | keys` do against a running gateway. The changes go through this process's identity
 * service, so its revocation store (memory, or Redis shared by every node) refuses what was
 * revoked on the next request. Authentication is the onRequest hook of `registerAdminApi`; each
 * change is also one `authz_admin` event with the admin as actor.
 *
 * `rampart keys rotate-master` has no endpoint: it re-encrypts with the previous master keys,
 * which only the config on disk holds, and it must run once, not once per node.
 */
export function registerManagementApi(app: FastifyInstance, deps: AdminApiDeps): void {
  const service = () => identityService(deps.identity);
  const event = (request: FastifyRequest, description: string, data: Record<string, string | number | boolean>, subject?: string) => emitAdminEvent(deps.events, request, description, data, subject);
  /** The admin as the identity service's actor. */
  const actorOf = (request: FastifyRequest): Actor => {
    const p = principal(request);
    return { id: p.user.id, roles: p.user.roles, sid: undefined, jti: undefined, exp: undefined };
  };
  /** The admin token is the operator (like the CLI offline): no ceiling but the owner's; an identity admin gives at most their own scopes. */
  const ceilingOf = (request: FastifyRequest): ReadonlySet<string> | undefined => {
    const p = principal(request);
    return p.via === 'token' ? undefined : new Set(service().scopesOf(p.user.roles));
  };
  const notFound = (what: string) => new RampartError('RMP_ADMIN_NOT_FOUND', { detail: `No such ${what}.` });

  // ── users ─────────────────────────────────────────────────────────────────────────────────
  app.post('/api/users', { schema: { body: CreateUserBody } }, async (request, reply) => {
    const body = request.body as Static<typeof CreateUserBody>;
    // `admin: true` is `rampart users create --admin`: the admin role, with any others given.
    const roles = body.admin === true ? [...new Set([...(body.roles ?? []), 'admin'])] : body.roles;
    const created = await service().createUser(actorOf(request), { email: body.email, roles }, clientOf(request));
    event(request, 'admin API: user created', { userId: created.user.id, roles: created.user.roles.join(' ') }, created.user.id);
    return reply.code(201).send({ user: created.user, oneTimePassword: created.oneTimePassword });
  });

  app.get('/api/users/:id', { schema: { params: IdParam } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    const user = await service().getUser(id);
    if (user === undefined) throw notFound('user');
    return user;
  });

  app.patch('/api/users/:id', { schema: { params: IdParam, body: PatchUserBody } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    const body = request.body as Static<typeof PatchUserBody>;
    const user = await service().updateUser(actorOf(request), id, { roles: body.roles, status: body.status }, clientOf(request));
    if (user === undefined) throw notFound('user');
    event(request, 'admin API: user updated', { userId: id, fields: Object.keys(body).sort().join(' ') }, id);
    return user;
  });

  app.delete('/api/users/:id', { schema: { params: IdParam } }, async (request, reply) => {
    const { id } = request.params as Static<typeof IdParam>;
    if (!(await service().deleteUser(actorOf(request), id, clientOf(request)))) throw notFound('user');
    event(request, 'admin API: user deleted', { userId: id }, id);
    return reply.code(204).send();
  });

  app.post('/api/users/:id/logout-all', { schema: { params: IdParam } }, async (request, reply) => {
    const { id } = request.params as Static<typeof IdParam>;
    const s = service();
    if ((await s.getUser(id)) === undefined) throw notFound('user');
    await s.logoutAll(id, principal(request).user.id, clientOf(request), 'ended_by_admin');
    event(request, 'admin API: every session of the user ended', { userId: id }, id);
    return reply.code(204).send();
  });

  app.post('/api/users/:id/mfa-reset', { schema: { params: IdParam } }, async (request, reply) => {
    const { id } = request.params as Static<typeof IdParam>;
    if (!(await service().resetMfa(actorOf(request), id, clientOf(request)))) throw notFound('user');
    event(request, 'admin API: second factor removed', { userId: id }, id);
    return reply.code(204).send();
  });

  app.post('/api/users/:id/password-reset', { schema: { params: IdParam } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    const secret = await service().resetPassword(actorOf(request), id, clientOf(request));
    if (secret === undefined) throw notFound('user');
    event(request, 'admin API: password reset', { userId: id }, id);
    return { oneTimePassword: secret, passwordChangeRequired: true };
  });

  // ── API keys (list, create and revoke are in api.ts) ──────────────────────────────────────
  app.get('/api/apikeys/:id', { schema: { params: IdParam } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    const key = await service().apiKeys.get(id);
    if (key === undefined) throw notFound('API key');
    return key;
  });

  // ── signing keys ──────────────────────────────────────────────────────────────────────────
  // KeyInfo is kid, alg, state and times: the private halves never leave the database.
  app.get('/api/keys', async () => ({ items: service().keys.list() }));

  app.post('/api/keys/rotate', async (request) => {
    const rotated = await service().keys.rotate();
    event(request, 'admin API: signing key rotation scheduled', { kid: rotated.kid, activeFrom: rotated.activeFrom });
    return rotated;
  });

  app.post('/api/keys/:kid/revoke', { schema: { params: KidParam } }, async (request, reply) => {
    const { kid } = request.params as Static<typeof KidParam>;
    if (!(await service().keys.revoke(kid))) throw notFound('published signing key');
    event(request, 'admin API: signing key revoked', { kid });
    return reply.code(204).send();
  });

  // ── OAuth clients (the list is in api.ts) ─────────────────────────────────────────────────
  app.post('/api/clients', { schema: { body: ClientCreateBody } }, async (request, reply) => {
    const body = request.body as Static<typeof ClientCreateBody>;
    const created = await service().clients.create(
      principal(request).user.id,
      ceilingOf(request),
      {
        id: body.id,
        name: body.name,
        scopes: body.scopes,
        authMethod: body.authMethod,
        jwks: body.jwks as JSONWebKeySet | undefined,
        introspection: body.introspection,
        tokenTtlS: body.tokenTtl === undefined ? undefined : Math.floor(parseDuration(body.tokenTtl) / 1000),
      },
      clientOf(request),
    );
    event(request, 'admin API: OAuth client created', { clientId: created.client.id }, `client:${created.client.id}`);
    return reply.code(201).send(created);
  });

  app.get('/api/clients/:id', { schema: { params: IdParam } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    const client = await service().clients.get(id);
    if (client === undefined) throw notFound('client');
    return client;
  });

  app.post('/api/clients/:id/rotate-secret', { schema: { params: IdParam, body: ClientRotateBody } }, async (request) => {
    const { id } = request.params as Static<typeof IdParam>;
    const body = request.body as Static<typeof ClientRotateBody>;
    const clients = service().clients;
    const overlapMs = body.overlap === undefined ? clients.settings.defaultOverlapMs : parseDuration(body.overlap);
    const rotated = await clients.rotateSecret(principal(request).user.id, ceilingOf(request), id, overlapMs, clientOf(request));
    if (rotated === undefined) throw notFound('client');
    event(request, 'admin API: client secret rotated', { clientId: id, secretId: rotated.secretId }, `client:${id}`);
    return rotated;
  });

  app.delete('/api/clients/:id', { schema: { params: IdParam } }, async (request, reply) => {
    const { id } = request.params as Static<typeof IdParam>;
    if (!(await service().clients.delete(principal(request).user.id, id, clientOf(request)))) throw notFound('client');
    event(request, 'admin API: OAuth client deleted', { clientId: id }, `client:${id}`);
    return reply.code(204).send();
  });
}
