import { Type } from '@sinclair/typebox';
import type { JSONWebKeySet } from 'jose';
import { RampartError } from '../errors/problem.js';
import { DURATION_PATTERN, parseDuration } from '../config/units.js';
import { CLIENT_AUTH_METHODS } from './clients.js';
import { check, queryObject, readBody, sendJson } from './http.js';
import { actorOf, clientOf, closed, guarded, Limit, NoQuery, requireAdmin, route, type BuiltinRoute } from './route-kit.js';
import type { IdentityService } from './service.js';

const Scope = Type.String({ pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$' });
const Scopes = Type.Array(Scope, { maxItems: 64, uniqueItems: true });
const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\x00-\\x1f\\x7f]+$' });
const Duration = Type.String({ pattern: DURATION_PATTERN });
// Each key is checked in depth by the service (public only, importable); here only its shape.
const Jwks = Type.Object({ keys: Type.Array(Type.Record(Type.String({ maxLength: 16 }), Type.Unknown()), { minItems: 1, maxItems: 10 }) }, closed);
export const CreateBody = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{2,63}$' })),
    name: Name,
    scopes: Scopes,
    authMethod: Type.Optional(Type.Union(CLIENT_AUTH_METHODS.map((m) => Type.Literal(m)))),
    jwks: Type.Optional(Jwks),
    introspection: Type.Optional(Type.Boolean()),
    tokenTtl: Type.Optional(Duration),
  },
  closed,
);
const PatchBody = Type.Object(
  {
    name: Type.Optional(Name),
    scopes: Type.Optional(Scopes),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
    introspection: Type.Optional(Type.Boolean()),
    jwks: Type.Optional(Jwks),
    tokenTtl: Type.Optional(Type.Union([Duration, Type.Null()])),
  },
  { ...closed, minProperties: 1 },
);
export const RotateBody = Type.Object({ overlap: Type.Optional(Duration) }, closed);
const ListQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ maxLength: 64 })) }, closed);

const notFound = () => new RampartError('RMP_OBJECT_NOT_FOUND', { detail: 'No such client.' });
const ttlSeconds = (d: string) => Math.floor(parseDuration(d) / 1000);

/**
 * `/api/v1/clients`: admins register OAuth clients (client credentials), give them a scope
 * ceiling no wider than their own scopes, rotate and revoke their secrets, disable and delete
 * them. A secret is shown once, in the answer that makes it.
 */
export function clientRoutes(service: IdentityService | undefined): BuiltinRoute[] {
  const run = guarded(service);
  return [
    {
      route: route('identity-clients', '/api/v1/clients', ['GET', 'POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        if (ctx.request.method === 'GET') {
          const q = check(ListQuery, queryObject(ctx.query), '/query');
          return sendJson(reply, 200, await s.clients.list({ limit: Number(q.limit ?? 20), after: q.cursor }));
        }
        check(NoQuery, queryObject(ctx.query), '/query');
        const body = await readBody(ctx, CreateBody);
        const created = await s.clients.create(
          actor.id,
          new Set(s.scopesOf(actor.roles)),
          { id: body.id, name: body.name, scopes: body.scopes, authMethod: body.authMethod, jwks: body.jwks as JSONWebKeySet | undefined, introspection: body.introspection, tokenTtlS: body.tokenTtl === undefined ? undefined : ttlSeconds(body.tokenTtl) },
          clientOf(ctx),
        );
        reply.header('location', `/api/v1/clients/${created.client.id}`);
        return sendJson(reply, 201, created.secret === undefined ? created.client : { ...created.client, secret: created.secret });
      }),
    },
    {
      route: route('identity-client', '/api/v1/clients/:id', ['GET', 'PATCH', 'DELETE'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        const id = ctx.params.id!;
        if (ctx.request.method === 'GET') {
          const found = await s.clients.get(id);
          if (found === undefined) throw notFound();
          return sendJson(reply, 200, found);
        }
        if (ctx.request.method === 'DELETE') {
          if (!(await s.clients.delete(actor.id, id, clientOf(ctx)))) throw notFound();
          return reply.code(204).header('cache-control', 'no-store').send();
        }
        const body = await readBody(ctx, PatchBody);
        const updated = await s.clients.update(
          actor.id,
          new Set(s.scopesOf(actor.roles)),
          id,
          { name: body.name, scopes: body.scopes, status: body.status, introspection: body.introspection, jwks: body.jwks as JSONWebKeySet | undefined, tokenTtlS: body.tokenTtl === undefined ? undefined : body.tokenTtl === null ? null : ttlSeconds(body.tokenTtl) },
          clientOf(ctx),
        );
        if (updated === undefined) throw notFound();
        return sendJson(reply, 200, updated);
      }),
    },
    {
      route: route('identity-client-secrets', '/api/v1/clients/:id/secrets', ['POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        const body = await readBody(ctx, RotateBody);
        const overlap = body.overlap === undefined ? s.clients.settings.defaultOverlapMs : parseDuration(body.overlap);
        const rotated = await s.clients.rotateSecret(actor.id, new Set(s.scopesOf(actor.roles)), ctx.params.id!, overlap, clientOf(ctx));
        if (rotated === undefined) throw notFound();
        return sendJson(reply, 201, rotated);
      }),
    },
    {
      route: route('identity-client-secret', '/api/v1/clients/:id/secrets/:secret', ['DELETE'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        requireAdmin(s, actor, ctx);
        if (!(await s.clients.revokeSecret(actor.id, ctx.params.id!, ctx.params.secret!, clientOf(ctx)))) throw new RampartError('RMP_OBJECT_NOT_FOUND', { detail: 'No such secret.' });
        return reply.code(204).header('cache-control', 'no-store').send();
      }),
    },
  ];
}
