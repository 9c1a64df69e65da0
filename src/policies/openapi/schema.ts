import { Type, type Static } from '@sinclair/typebox';
import { Strict, StringEnum } from '../../config/types.js';

export const OpenApiSchema = Strict(
  {
    spec: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The OpenAPI 3.0 or 3.1 document (YAML or JSON, relative to the config file) describing what this route forwards to. Defaults to the `openapi` of the route\'s upstream; with neither, the policy does nothing.',
      }),
    ),
    basePath: Type.Optional(
      Type.String({
        pattern: '^(/[^/?#\\s]+)*$',
        'x-expected': 'a path prefix like /v1, or an empty string',
        description:
          'Prefix of the forwarded path (after `stripPrefix`/`rewrite`) that the document\'s paths are relative to. Defaults to the path of the document\'s first `servers` URL (`https://api.example.com/v1` → `/v1`), or none.',
      }),
    ),
    strict: Type.Boolean({
      description:
        'Refuse requests for operations the document does not have: 404 `RMP_ROUTE_NOT_FOUND` for an unknown path, 405 `RMP_METHOD_NOT_ALLOWED` (with `Allow`) for an unknown method. Undocumented and shadow endpoints are then unreachable. With `false` they are forwarded unchecked (and their answers unfiltered).',
      default: true,
    }),
    request: Type.Boolean({
      description:
        'Validate requests against their operation: path, query, header and cookie parameters, the body\'s media type (415 otherwise) and a JSON or form body, with undeclared and `readOnly` properties refused (400 `RMP_VALIDATION_FAILED`).',
      default: true,
    }),
    unknownQuery: StringEnum(['refuse', 'allow'] as const, {
      description: 'What a query parameter the operation does not declare gets: `refuse` (400, like any invalid input) or `allow` (forwarded unchecked).',
      default: 'refuse',
    }),
    response: Strict(
      {
        allowlist: Type.Boolean({
          description:
            'Remove from JSON answers every property the operation\'s response schema for that status does not declare, and every `writeOnly` one (excessive data exposure). Each answer with removals is reported as a `response_redacted` event (`filter: allowlist`).',
          default: true,
        }),
        undeclared: StringEnum(['refuse', 'pass'] as const, {
          description:
            'What a JSON answer gets when its status (or media type) has no response in the document: `refuse` replaces a 1xx–3xx one by 502 `RMP_RESPONSE_UNDECLARED` (nothing of it is sent); `pass` sends it unfiltered (with a warning in the log). Error answers (4xx, 5xx) without a declared response always pass here (5xx are replaced by the `upstream-errors` policy).',
          default: 'refuse',
        }),
      },
      { description: 'What is done with the upstream\'s answers.', default: {} },
    ),
  },
  { description: 'OpenAPI request validation and response allowlisting.' },
);

export type OpenApiOptions = Static<typeof OpenApiSchema>;
