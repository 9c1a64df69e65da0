import type { IncomingHttpHeaders } from 'node:http';
import { parseDuration } from '../../config/units.js';
import { definePolicy } from '../define.js';
import { HeadersSchema } from './schema.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*$/i;

/**
 * The API profile of security headers. Every value is computed here, once per route; a response
 * only gets headers set, banners removed, and a charset added to bare JSON content types.
 */
export const headersPolicy = definePolicy({
  name: 'headers',
  phase: 'respond',
  enabledByDefault: true,
  description: 'Sets the API profile of security headers and removes server banners from upstream responses.',
  schema: HeadersSchema,
  create(options) {
    const set: [string, string][] = [];
    const add = (name: string, value: string) => {
      if (value !== 'off') set.push([name, value]);
    };
    add('x-content-type-options', options.contentTypeOptions);
    add('x-frame-options', options.frameOptions);
    add('content-security-policy', options.contentSecurityPolicy);
    add('referrer-policy', options.referrerPolicy);
    add('cross-origin-resource-policy', options.crossOriginResourcePolicy);
    const cacheControl = options.cacheControl === 'off' ? undefined : options.cacheControl;
    const authenticatedCacheControl = options.authenticatedCacheControl === 'off' ? undefined : options.authenticatedCacheControl;
    const hsts = options.hsts;
    const hstsValue = hsts.enabled
      ? `max-age=${Math.floor(parseDuration(hsts.maxAge) / 1000)}${hsts.includeSubDomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`
      : undefined;
    const remove = options.remove;
    const jsonCharset = options.jsonCharset;
    return {
      response(ctx, reply) {
        for (let i = 0; i < remove.length; i++) reply.removeHeader(remove[i]!);
        for (let i = 0; i < set.length; i++) reply.header(set[i]![0], set[i]![1]);
        if (hstsValue !== undefined && ctx.protocol === 'https') reply.header('strict-transport-security', hstsValue);
        if (authenticatedCacheControl !== undefined && (ctx.authenticated || hasCredentials(ctx.request.headers))) reply.header('cache-control', authenticatedCacheControl);
        else if (cacheControl !== undefined && !reply.hasHeader('cache-control')) reply.header('cache-control', cacheControl);
        if (jsonCharset) {
          const type = reply.getHeader('content-type');
          if (typeof type === 'string' && JSON_TYPE.test(type)) reply.header('content-type', `${type.trimEnd()}; charset=utf-8`);
        }
      },
    };
  },
});

/** Whether the request carried credentials of its own (before any authentication policy judged them). */
function hasCredentials(headers: IncomingHttpHeaders): boolean {
  return headers.authorization !== undefined || headers.cookie !== undefined;
}
