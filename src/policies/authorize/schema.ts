import { Type, type Static } from '@sinclair/typebox';
import { HTTP_METHODS } from '../../config/schema.js';
import { Strict } from '../../config/types.js';

const Names = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 128, description: 'A name.' }), { minItems: 1, uniqueItems: true, description });

const Requirements = {
  scopes: Type.Optional(
    Strict(
      {
        all: Type.Optional(Names('The consumer must have every one of these scopes.')),
        any: Type.Optional(Names('The consumer must have at least one of these scopes.')),
      },
      { description: 'Scopes required of the consumer.' },
    ),
  ),
  roles: Type.Optional(Names('The consumer must have at least one of these roles.')),
  allow: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 2000, description: 'A CEL expression.' }), {
      minItems: 1,
      description:
        'CEL rules over `request` (`method`, `path`, `params`, `query`, `headers`) and `consumer` (`id`, `type`, `scopes`, `roles`, `claims`); the request is allowed when one of them is true, e.g. `request.params.userId == consumer.id || \'admin\' in consumer.roles`.',
    }),
  ),
};

export const AuthorizeSchema = Strict(
  {
    ...Requirements,
    response: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 2000, description: 'A CEL expression.' }), {
        minItems: 1,
        description:
          'CEL rules checked on every 2xx JSON response (`response.status`, `response.body`, plus `request` and `consumer`): all must be true, otherwise the client gets 404 `RMP_OBJECT_NOT_FOUND` and none of the body, e.g. `response.body.ownerId == consumer.id`. A write answered without content (DELETE → 204/205) passes: it carries no object, and the write has happened; writes on other owners\' objects are for the upstream (or a request rule) to refuse.',
      }),
    ),
    methods: Type.Optional(
      Strict(Object.fromEntries(HTTP_METHODS.map((m) => [m, Type.Optional(Strict(Requirements, { description: `Requirements for ${m} instead of the ones above.` }))])), {
        description: 'Requirements for one method instead of the ones above (admin-only DELETE, say).',
      }),
    ),
  },
  { description: 'Authorization: scopes, roles and CEL rules per route and method. Default deny: when a route has rules and none allows, 403.' },
);

export type AuthorizeOptions = Static<typeof AuthorizeSchema>;
