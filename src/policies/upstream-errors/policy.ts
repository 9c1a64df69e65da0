import type { IncomingHttpHeaders } from 'node:http';
import { parseSize } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import type { RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { UpstreamErrorsSchema } from './schema.js';

/** A `Retry-After` worth keeping: delay-seconds, or a short HTTP date (RFC 9110 §10.2.3). */
function retryAfter(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return v;
  return v.length <= 40 && /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v) ? v : undefined;
}

/**
 * Upstream error answers replaced by the gateway's own problem+json (respond phase, on by
 * default): decided from the status, before any of the body is read; the body is read and
 * dropped (the connection is reused), its start logged.
 */
export const upstreamErrorsPolicy = definePolicy({
  name: 'upstream-errors',
  phase: 'respond',
  priority: 700,
  enabledByDefault: true,
  description: 'Replaces upstream 5xx answers (and optionally 4xx) with problem+json `RMP_UPSTREAM_ERROR`, so no stack trace or SQL error reaches a client; the upstream\'s answer is logged.',
  schema: UpstreamErrorsSchema,
  create(options, pctx) {
    if (!pctx.proxied) return {};
    const from = options.clientErrors === 'replace' ? 400 : 500;
    const to = options.serverErrors === 'replace' ? 600 : 500;
    if (from >= to) return {};
    return {
      keepRefusedBody: parseSize(options.logBody),
      responseHead(ctx: RequestContext, status: number, headers: IncomingHttpHeaders) {
        if (status < from || status >= to) return;
        const retry = status === 503 || status === 429 ? retryAfter(headers['retry-after']) : undefined;
        const cause = new Error(`upstream answered ${status} (route '${ctx.route.name}', ${ctx.target ?? 'unknown target'})`);
        if (status >= 500) {
          throw new RampartError('RMP_UPSTREAM_ERROR', { detail: 'The upstream service failed to answer this request.', cause, ...(retry !== undefined ? { headers: { 'retry-after': retry } } : {}) });
        }
        throw new RampartError('RMP_UPSTREAM_CLIENT_ERROR', { status, detail: 'The upstream service refused this request.', cause, ...(retry !== undefined ? { headers: { 'retry-after': retry } } : {}) });
      },
    };
  },
});
