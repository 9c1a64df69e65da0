import type { FastifyReply } from 'fastify';
import { parseDuration } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import { definePolicy } from '../define.js';
import { CorsSchema, type CorsOptions } from './schema.js';

/** Compiles the allowed origins once; the per-request check is a Set lookup or a few anchored regexes. */
export function compileOrigins(options: Pick<CorsOptions, 'origins' | 'originPatterns' | 'credentials'>): (origin: string) => boolean {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  let any = false;
  for (const entry of options.origins) {
    if (entry === '*') {
      if (options.credentials) throw new Error("origin '*' cannot be combined with credentials: list the origins explicitly");
      any = true;
    } else if (entry === 'null') {
      // Any page can send `Origin: null` (sandboxed iframes, data: URLs): never with credentials.
      if (options.credentials) throw new Error("origin 'null' cannot be combined with credentials");
      exact.add('null');
    } else if (entry.includes('*')) {
      const m = /^(https?):\/\/\*\.((?:[a-z0-9-]+\.)*[a-z0-9-]+)(:\d{1,5})?$/.exec(entry);
      if (m === null) throw new Error(`invalid wildcard origin '${entry}': expected scheme://*.domain[:port]`);
      const domain = m[2]!.replace(/\./g, '\\.');
      patterns.push(new RegExp(`^${m[1]}://(?:[a-z0-9-]+\\.)+${domain}${(m[3] ?? '').replace(/[.]/g, '\\.')}$`));
    } else {
      // Browsers send the serialized origin: lowercase, default port omitted, no path.
      let url: URL | undefined;
      try {
        if (/^https?:\/\/[^/?#@\s]+$/i.test(entry)) url = new URL(entry);
      } catch {
        url = undefined;
      }
      if (url === undefined) throw new Error(`invalid origin '${entry}': expected scheme://host[:port] with no path`);
      exact.add(url.origin);
    }
  }
  for (const source of options.originPatterns) {
    let pattern: RegExp;
    try {
      // Compiled alone first: `a)|(b` would otherwise close the anchoring group and match anywhere.
      new RegExp(source);
      pattern = new RegExp(`^(?:${source})$`);
    } catch (error) {
      throw new Error(`invalid origin pattern '${source}': ${(error as Error).message}`);
    }
    if (options.credentials && (pattern.test('null') || pattern.test('https://rampart-probe.invalid'))) {
      throw new Error(`origin pattern '${source}' matches any origin (or null) and cannot be combined with credentials`);
    }
    patterns.push(pattern);
  }
  return (origin) => any || exact.has(origin) || patterns.some((p) => p.test(origin));
}

const UPSTREAM_CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
];

function appendVary(reply: FastifyReply, value: string): void {
  const current = reply.getHeader('vary');
  if (current === undefined || current === '') reply.header('vary', value);
  else if (!String(current).toLowerCase().split(/\s*,\s*/).includes(value.toLowerCase())) reply.header('vary', `${String(current)}, ${value}`);
}

/**
 * CORS for one route. Preflights (OPTIONS with Access-Control-Request-Method) are answered here
 * with 204, before authentication; a disallowed preflight is a 403 with no CORS headers. Actual
 * requests from an allowed origin get Access-Control-Allow-Origin; others get no CORS headers
 * (the browser then withholds the response). `Vary: Origin` is always sent.
 */
export const corsPolicy = definePolicy({
  name: 'cors',
  phase: 'cors',
  // On by default with no origins: the gateway owns CORS, so preflights are refused and an
  // upstream's own (possibly permissive) CORS headers never reach a browser until origins are listed.
  enabledByDefault: true,
  description: 'Answers CORS preflights and adds CORS headers for allowed origins; closed unless origins are listed.',
  schema: CorsSchema,
  create(options) {
    const allowed = compileOrigins(options);
    const anyOrigin = options.origins.includes('*');
    const methods = new Set<string>(options.methods);
    const allowHeaders = new Set(options.allowHeaders.map((h) => h.toLowerCase()));
    const methodsValue = options.methods.join(', ');
    const allowHeadersValue = options.allowHeaders.join(', ');
    const exposeValue = options.exposeHeaders.join(', ');
    const maxAge = String(Math.floor(parseDuration(options.maxAge) / 1000));
    const credentials = options.credentials;
    const allowOrigin = (origin: string) => (anyOrigin && !credentials ? '*' : origin);

    return {
      request(ctx) {
        const headers = ctx.request.raw.headers;
        const origin = headers.origin;
        if (origin === undefined || ctx.request.method !== 'OPTIONS' || headers['access-control-request-method'] === undefined) return;
        const method = headers['access-control-request-method'];
        const requested = headers['access-control-request-headers'];
        const names = requested === undefined || requested.trim() === '' ? [] : requested.toLowerCase().split(/\s*,\s*/);
        if (!allowed(origin) || !methods.has(method) || names.some((n) => !allowHeaders.has(n))) {
          throw new RampartError('RMP_CORS_PREFLIGHT_REJECTED', { detail: 'This origin, method or header is not allowed here.' });
        }
        const out: Record<string, string> = {
          'access-control-allow-origin': allowOrigin(origin),
          'access-control-allow-methods': methodsValue,
          'access-control-max-age': maxAge,
        };
        if (allowHeadersValue !== '') out['access-control-allow-headers'] = allowHeadersValue;
        if (credentials) out['access-control-allow-credentials'] = 'true';
        ctx.endWith(204, out);
      },
      response(ctx, reply) {
        appendVary(reply, 'Origin');
        if (ctx.localReply !== undefined) return; // our own preflight answer
        for (let i = 0; i < UPSTREAM_CORS_HEADERS.length; i++) reply.removeHeader(UPSTREAM_CORS_HEADERS[i]!);
        const headers = ctx.request.raw.headers;
        const origin = headers.origin;
        if (origin === undefined || !allowed(origin)) return;
        // A preflight that got here was refused (an allowed one ended in the request hook).
        if (ctx.request.method === 'OPTIONS' && headers['access-control-request-method'] !== undefined) return;
        reply.header('access-control-allow-origin', allowOrigin(origin));
        if (credentials) reply.header('access-control-allow-credentials', 'true');
        if (exposeValue !== '') reply.header('access-control-expose-headers', exposeValue);
      },
    };
  },
});
