import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict, StringEnum } from '../../config/types.js';
import { HTTP_METHODS } from '../../config/schema.js';

const HeaderName = Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,64}$', 'x-expected': 'a header name', description: 'A header name.' });

export const CorsSchema = Strict(
  {
    origins: Type.Array(
      Type.String({
        minLength: 1,
        description: 'An origin: `https://app.example.com`, `https://*.example.com` (any subdomain, never the bare domain), `null`, or `*` (any origin, never with credentials).',
      }),
      { uniqueItems: true, description: 'Origins allowed to call this route from a browser. Empty: CORS closed.', default: [] },
    ),
    originPatterns: Type.Array(Type.String({ minLength: 1, description: 'A regular expression, anchored at both ends at load.' }), {
      description: 'Further allowed origins as regular expressions (matched against the whole origin).',
      default: [],
    }),
    methods: Type.Array(StringEnum(HTTP_METHODS, { description: 'An HTTP method.' }), {
      uniqueItems: true,
      minItems: 1,
      description: 'Methods a cross-origin request may use (`Access-Control-Allow-Methods`).',
      default: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    }),
    allowHeaders: Type.Array(HeaderName, {
      uniqueItems: true,
      description: 'Request headers a cross-origin request may send (`Access-Control-Allow-Headers`), besides the CORS-safelisted ones.',
      default: ['content-type', 'authorization', 'x-request-id'],
    }),
    exposeHeaders: Type.Array(HeaderName, {
      uniqueItems: true,
      description: 'Response headers scripts may read (`Access-Control-Expose-Headers`).',
      default: ['x-request-id'],
    }),
    credentials: Type.Boolean({ description: 'Allow cookies and HTTP authentication (`Access-Control-Allow-Credentials`); needs explicit origins.', default: false }),
    maxAge: Duration({ description: 'How long browsers may cache a preflight answer (`Access-Control-Max-Age`).', default: '10m' }),
  },
  { description: 'Cross-origin resource sharing: closed unless origins are listed; preflights answered before authentication.', default: {} },
);

export type CorsOptions = Static<typeof CorsSchema>;
