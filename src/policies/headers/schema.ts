import { Type, type Static } from '@sinclair/typebox';
import { Duration, Strict } from '../../config/types.js';

/** A header value, or `off` to send none. */
const Value = (description: string, value: string) =>
  Type.String({ minLength: 1, pattern: '^[\\t\\x20-\\x7e]+$', 'x-expected': 'a header value, or off', description: `${description} \`off\` sends none.`, default: value });

export const HeadersSchema = Strict(
  {
    hsts: Strict(
      {
        enabled: Type.Boolean({ description: 'Send `Strict-Transport-Security` on HTTPS responses (never over plain HTTP, where it means nothing).', default: true }),
        maxAge: Duration({ description: 'How long browsers remember to use HTTPS only.', default: '365d' }),
        includeSubDomains: Type.Boolean({ description: 'Apply to every subdomain too.', default: true }),
        preload: Type.Boolean({ description: 'Ask to be preloaded by browsers (hard to undo: opt in only when every subdomain is HTTPS).', default: false }),
      },
      { description: 'HTTP Strict Transport Security.', default: {} },
    ),
    contentTypeOptions: Value('`X-Content-Type-Options`: browsers must not guess content types.', 'nosniff'),
    frameOptions: Value('`X-Frame-Options`: API responses are never framed.', 'DENY'),
    contentSecurityPolicy: Value('`Content-Security-Policy` for API responses: nothing may load, nothing may frame.', "default-src 'none'; frame-ancestors 'none'"),
    referrerPolicy: Value('`Referrer-Policy`.', 'no-referrer'),
    crossOriginResourcePolicy: Value('`Cross-Origin-Resource-Policy`.', 'same-origin'),
    cacheControl: Value('`Cache-Control` set on this route\'s responses when the upstream sent none (`no-store` for personal data).', 'off'),
    authenticatedCacheControl: Value(
      '`Cache-Control` on every response to a request that carried credentials (an `Authorization` or `Cookie` header, or one an authentication policy accepted), replacing the upstream\'s own: a shared cache must never keep one user\'s data for another.',
      'no-store',
    ),
    remove: Type.Array(Type.String({ pattern: '^[a-z0-9-]{1,64}$', 'x-expected': 'a lowercase header name', description: 'A response header name.' }), {
      uniqueItems: true,
      description: 'Response headers removed from upstream responses: server banners and framework fingerprints.',
      default: ['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-runtime', 'x-generator', 'x-drupal-cache', 'x-backend-server'],
    }),
    jsonCharset: Type.Boolean({ description: 'Add `; charset=utf-8` to a JSON `Content-Type` that has no charset.', default: true }),
  },
  { description: 'Security headers for API responses, on every response (upstream, error or local).', default: {} },
);

export type HeadersOptions = Static<typeof HeadersSchema>;
