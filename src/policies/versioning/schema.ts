import { Type, type Static } from '@sinclair/typebox';
import { Strict } from '../../config/types.js';

/** An RFC 3339 date-time with an explicit offset; checked for a real date at load. */
export const DATE_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';
const DATE_TIME_EXPECTED = 'an RFC 3339 date-time with an offset, e.g. 2027-01-31T00:00:00Z';

export const DateTime = (description: string) => Type.String({ pattern: DATE_TIME_PATTERN, 'x-expected': DATE_TIME_EXPECTED, description });

export const Deprecated = () =>
  DateTime(
    'When the version is (or will be) deprecated. From the moment this is set, every response of its routes carries `Deprecation: @<unix seconds>` (RFC 9745; a future date announces a coming deprecation).',
  );
export const Sunset = () =>
  DateTime(
    'When the version stops being served. Every response of its routes carries `Sunset: <HTTP-date>` (RFC 8594); from this instant on they answer 410 `RMP_VERSION_RETIRED` and nothing is forwarded. Not before `deprecated`.',
  );
export const DeprecationLink = () =>
  Type.String({
    pattern: '^https?://[^\\s<>"]+$',
    'x-expected': 'an http:// or https:// URL',
    description: 'A page about the deprecation (migration guide): sent as `Link: <url>; rel="deprecation"` with the `Deprecation` header.',
  });

const Select = Strict(
  {
    header: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9!#$%&\'*+.^_`|~-]{1,64}$',
        'x-expected': 'a lowercase header name',
        description: 'The request header that names the version (`api-version: 2`). Give one of `header`, `mediaType` and `query`.',
      }),
    ),
    mediaType: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9!#$%&\'*+.^_`|~-]{1,64}$',
        'x-expected': 'a lowercase media-type parameter name',
        description: 'The `Accept` media-type parameter that names the version (`mediaType: version` selects on `Accept: application/json; version=2`). Give one of `header`, `mediaType` and `query`.',
      }),
    ),
    query: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9._~-]{1,64}$',
        'x-expected': 'a query parameter name of letters, digits, ".", "_", "~" or "-"',
        description: 'The query parameter that names the version (`query: api-version` selects on `?api-version=2`; given twice, the request is refused). Give one of `header`, `mediaType` and `query`.',
      }),
    ),
    value: Type.String({
      pattern: '^[A-Za-z0-9._~-]{1,64}$',
      'x-expected': 'letters, digits, ".", "_", "~" or "-"',
      description: 'The value that selects this version (compared exactly).',
    }),
  },
  {
    description:
      'Select this version by a request header, an `Accept` parameter or a query parameter instead of the path: routes of such versions may share a method and path, and each request is routed to the version it names. Versions sharing a path must select the same way (the same header, `Accept` parameter or query parameter).',
  },
);

/** One entry of the top-level `versions:` map. */
export const VersionSchema = Strict(
  {
    prefix: Type.Optional(
      Type.String({
        pattern: '^(/[A-Za-z0-9._~-]+)+$',
        'x-expected': 'a literal path such as /api/v1',
        description:
          'Path-prefix versioning: every route of this version has a path starting with this literal prefix (checked at load). With a `successor` that has a prefix too, the successor link of a request is its path with the prefix swapped, when a route of the successor serves that path.',
      }),
    ),
    select: Type.Optional(Select),
    default: Type.Boolean({
      description:
        'For versions chosen by `select`: a request that names no version gets this one. At most one version is the default; on a path none of whose versions is the default, a request naming no version gets 400 `RMP_VERSION_REQUIRED`.',
      default: false,
    }),
    deprecated: Type.Optional(Deprecated()),
    sunset: Type.Optional(Sunset()),
    successor: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'The version that replaces this one (a name under `versions`): its routes are announced with `Link: <path>; rel="successor-version"` on every response of this one.',
      }),
    ),
    link: Type.Optional(DeprecationLink()),
  },
  { description: 'An API version: how requests select it, and when it is deprecated and retired.' },
);

export type VersionConfig = Static<typeof VersionSchema>;

/** The `versioning` policy's own options (the versions themselves are the top-level `versions:`). */
export const VersioningSchema = Strict(
  {
    retire: Type.Boolean({
      description:
        'After a version\'s `sunset`, answer 410 `RMP_VERSION_RETIRED` without forwarding. `false` keeps serving the route past its sunset (still with the headers), a grace period the config shows.',
      default: true,
    }),
  },
  {
    description: 'Deprecation (RFC 9745) and sunset (RFC 8594) headers for the routes of a version, and 410 after its sunset.',
    default: {},
  },
);

export type VersioningOptions = Static<typeof VersioningSchema>;
