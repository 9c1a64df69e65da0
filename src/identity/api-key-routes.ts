import { Type } from '@sinclair/typebox';
import { RampartError } from '../errors/problem.js';
import { DURATION_PATTERN, parseDuration } from '../config/units.js';
import { check, queryObject, readBody, sendJson } from './http.js';
import { actorOf, clientOf, closed, denied, guarded, isAdmin, Limit, NoQuery, route, type BuiltinRoute } from './route-kit.js';
import type { IdentityService } from './service.js';

const Scope = Type.String({ pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$' });
const Id = Type.String({ pattern: '^[0-9a-f-]{36}$' });
const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
    scopes: Type.Optional(Type.Array(Scope, { maxItems: 64, uniqueItems: true })),
    expiresIn: Type.Optional(Type.String({ pattern: DURATION_PATTERN })),
    userId: Type.Optional(Id),
  },
  closed,
);
const ListQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ maxLength: 512 })), userId: Type.Optional(Id) }, closed);

const notFound = () => new RampartError('RMP_OBJECT_NOT_FOUND', { detail: 'No such API key.' });

/**
 * `/api/v1/api-keys`: a user makes, lists and revokes their own keys; an admin anyone's. A key is
 * made only by an authenticated user (an access token of this service — never with another API
 * key) and is shown once, in the answer that creates it.
 */
export function apiKeyRoutes(service: IdentityService | undefined): BuiltinRoute[] {
  const run = guarded(service);
  return [
    {
      route: route('identity-api-keys', '/api/v1/api-keys', ['GET', 'POST'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        if (ctx.request.method === 'GET') {
          const q = check(ListQuery, queryObject(ctx.query), '/query');
          // Users list their own; admins anyone's (all of them without userId).
          if (q.userId !== undefined && q.userId !== actor.id && !isAdmin(actor)) {
            denied(s, actor, ctx, 'another user\'s API keys');
            throw new RampartError('RMP_AUTHZ_DENIED', { detail: 'Only admins may list another user\'s API keys.' });
          }
          const userId = q.userId ?? (isAdmin(actor) ? undefined : actor.id);
          return sendJson(reply, 200, await s.apiKeys.list({ userId, limit: Number(q.limit ?? 20), cursor: q.cursor }));
        }
        check(NoQuery, queryObject(ctx.query), '/query');
        const body = await readBody(ctx, CreateBody);
        const ownerId = body.userId ?? actor.id;
        if (ownerId !== actor.id && !isAdmin(actor)) {
          denied(s, actor, ctx, 'an API key for another user');
          throw new RampartError('RMP_AUTHZ_DENIED', { detail: 'Only admins may make API keys for another user.' });
        }
        const created = await s.apiKeys.create(
          { id: actor.id, roles: actor.roles },
          { ownerId, name: body.name, scopes: body.scopes, expiresInMs: body.expiresIn === undefined ? undefined : parseDuration(body.expiresIn) },
          clientOf(ctx),
        );
        reply.header('location', `/api/v1/api-keys/${created.key.id}`);
        // The key itself is in this answer only: it is not stored.
        return sendJson(reply, 201, { ...created.key, key: created.secret });
      }),
    },
    {
      route: route('identity-api-key', '/api/v1/api-keys/:id', ['GET', 'DELETE'], true),
      handler: run(async (s, ctx, reply) => {
        const actor = actorOf(ctx);
        const key = await s.apiKeys.get(ctx.params.id!);
        // Someone else's key answers as one that does not exist.
        if (key === undefined || (key.userId !== actor.id && !isAdmin(actor))) {
          if (key !== undefined) denied(s, actor, ctx, 'another user\'s API key');
          throw notFound();
        }
        if (ctx.request.method === 'GET') return sendJson(reply, 200, key);
        // Revoking a revoked key changes nothing and says so the same way.
        if (key.revokedAt === null) await s.apiKeys.revoke(actor.id, key.id, clientOf(ctx), key.userId === actor.id ? 'revoked_by_owner' : 'revoked_by_admin');
        return reply.code(204).header('cache-control', 'no-store').send();
      }),
    },
  ];
}
