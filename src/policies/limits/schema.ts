import { Type, type Static } from '@sinclair/typebox';
import { Size, Strict, StringEnum } from '../../config/types.js';

export const LimitsSchema = Strict(
  {
    body: Size({ description: 'Largest request body (→ 413). A declared `Content-Length` over it is refused before anything is read; a chunked body is counted as it streams.', default: '1MiB' }),
    url: Type.Integer({ minimum: 64, maximum: 65_536, description: 'Longest request target, path and query, in bytes (→ 414).', default: 8192 }),
    contentTypes: Type.Array(
      Type.String({
        pattern: '^[a-z0-9!#$&^_.+-]+/(\\*|[a-z0-9!#$&^_.+-]*\\*?[a-z0-9!#$&^_.+-]*)$',
        'x-expected': 'a media type such as application/json, application/*+json or text/*',
        description: 'A media type; `*` stands for any run of characters in the subtype (`application/*+json`, `text/*`).',
      }),
      {
        description: 'Media types a request body may have (→ 415; a body with no `Content-Type` is refused too). XML is not in the default list: XML bodies are refused unless a route lists them, and then checked as `xml` says.',
        default: ['application/json', 'application/*+json', 'application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain', 'application/octet-stream'],
      },
    ),
    json: Strict(
      {
        depth: Type.Integer({ minimum: 1, maximum: 1000, description: 'Deepest nesting of objects and arrays in a JSON body (→ 400).', default: 32 }),
        keys: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Most keys in one JSON object (→ 400).', default: 1000 }),
        items: Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'Most items in one JSON array (→ 400).', default: 10_000 }),
      },
      { description: 'Shape limits for JSON bodies, which are read (up to `body`), checked, and forwarded byte for byte. `__proto__` and `constructor.prototype` keys are always refused.', default: {} },
    ),
    xml: Strict(
      {
        depth: Type.Integer({ minimum: 1, maximum: 1000, description: 'Deepest nesting of elements in an XML body, the root element counting as 1 (→ 400 `RMP_XML_LIMIT_EXCEEDED`).', default: 32 }),
      },
      {
        description:
          'Checks on XML bodies (`application/xml`, `text/xml`, `*/*+xml`), for routes that list an XML type in `contentTypes`. They are read (up to `body`), checked, and forwarded byte for byte. Always refused (400): any DOCTYPE or other DTD declaration, or XInclude (`RMP_XML_FORBIDDEN`); a body that is not UTF-8, holds a NUL or control character, does not start with `<`, declares an encoding other than UTF-8 or US-ASCII, or is not well-formed (`RMP_XML_INVALID`). A `charset` other than utf-8 or us-ascii on the `Content-Type` is refused with 415.',
        default: {},
      },
    ),
    headers: Type.Integer({ minimum: 8, maximum: 1000, description: 'Most request header fields (→ 431). Their total size is capped at 16 KiB by the HTTP parser.', default: 100 }),
    response: Strict(
      {
        buffer: Size({ description: 'Largest upstream answer held whole for the response filters (`redact`, `detect`, allowlists) and `authorize` response rules, counted after decompression. Answers the route does not filter always stream.', default: '1MiB' }),
        oversize: StringEnum(['refuse', 'stream'] as const, {
          description: 'A filtered answer larger than `buffer`: `refuse` answers 502 `RMP_RESPONSE_TOO_LARGE` (decided from `Content-Length` before anything is read, else as it streams; nothing of it is sent); `stream` sends it unfiltered and records a `response_unfiltered` event. Routes with `authorize` response rules always refuse.',
          default: 'refuse',
        }),
      },
      { description: 'The bound on upstream answers held for filtering.', default: {} },
    ),
  },
  { description: 'Request size limits, checked before the request reaches any other policy or the upstream, and the bound on upstream answers held for response filters.', default: {} },
);

export type LimitsOptions = Static<typeof LimitsSchema>;
