import { Type, type Static } from '@sinclair/typebox';
import { Size, Strict } from '../../config/types.js';

/** A JSON pointer (RFC 6901: `~` only as `~0` or `~1`) or a property name (anything not starting with `/`). */
const FIELD_PATTERN = '^(?:(?:/(?:[^~/]|~[01])*)+|[^/].*)$';

export const InspectSchema = Strict(
  {
    nosqlOperators: Type.Boolean({
      description:
        'Refuse MongoDB query operators (`$where`, `$ne`, `$gt`, `$regex`, `$expr`, `$or`, … — the fixed list in the policy README) as keys of JSON body objects at any depth, and in query and form body parameter names, alone or in bracket or dot form (`$where=…`, `user[$ne]=x`, `a[b][$gt]=1`, `a.$gt=1`).',
      default: true,
    }),
    anyDollarKey: Type.Boolean({
      description:
        'With `nosqlOperators`, refuse every key and query name segment starting with `$`, not only the listed operators. Also refuses JSON Schema (`$schema`, `$ref`, `$id`), MongoDB Extended JSON (`$oid`, `$date`), .NET type discriminators (`$type`) and OData query options (`$filter`, `$top`): only for routes that take none of them.',
      default: false,
    }),
    nulBytes: Type.Boolean({
      description: 'Refuse NUL (U+0000) in JSON string values and keys, in query and form body names and values (percent-decoded), in path parameters (decoded once and twice) and in header values.',
      default: true,
    }),
    crlf: Type.Boolean({
      description:
        'Refuse CR or LF, which an upstream copying the value into a header would turn into a new header or response (CRLF injection), in query names and values (percent-decoded), in path parameters (decoded once and twice), and in the JSON body fields listed in `crlfFields`. Other JSON strings may hold newlines (free text does).',
      default: true,
    }),
    crlfFields: Type.Array(
      Type.String({
        maxLength: 256,
        pattern: FIELD_PATTERN,
        'x-expected': 'a JSON pointer such as /user/redirectUrl, or a property name such as filename',
        description: 'A JSON pointer into the body (`/user/redirectUrl`, `/files/0/name`), or a property name (`filename`: that key at any depth).',
      }),
      {
        maxItems: 100,
        description: 'Body fields whose values end up in headers upstream (a redirect URL, a download file name): `crlf` refuses CR and LF in them. A JSON field whose value is an array has each string item checked; a property name also names a form body field (by its whole name).',
        default: [],
      },
    ),
    pathTraversal: Type.Boolean({
      description:
        'Refuse path parameters that, decoded once (as routed) or twice (double encoding), are or hold a dot segment (`.`, `..`, also before `;`), hold a NUL, or have an overlong UTF-8 sequence (`%c0%ae` for `.`, `%c0%af` for `/`); and single parameters that hold a `/` or `\\` once decoded twice (`%252F`), or once decoded with `separators`.',
      default: true,
    }),
    separators: Type.Boolean({
      description:
        'With `pathTraversal`, also refuse a `/` or `\\` in a single path parameter decoded once (`a%2Fb`, `DOMAIN%5Cuser`). Off by default: such ids are legitimate for some APIs (`group%2Fproject`, `@scope%2Fname`), and without a dot segment, which is refused in any encoding, a parameter cannot climb out of its place. A `*` wildcard may always hold `/`.',
      default: false,
    }),
    maxBody: Size({
      description:
        'Largest request body this policy reads itself (→ 413 `RMP_BODY_TOO_LARGE`): a form body (`application/x-www-form-urlencoded`, which `limits` streams unread), or a JSON body on a route where `limits` is off. A JSON body `limits` has read is checked within its own `body` bound.',
      default: '1MiB',
    }),
  },
  {
    description:
      'Rejects injection payloads in string inputs where typed validation allows free text: NoSQL operator keys, NUL bytes, CR/LF in values that end up in headers, path traversal in path parameters. Runs after `openapi` validation.',
    default: {},
  },
);

export type InspectOptions = Static<typeof InspectSchema>;
