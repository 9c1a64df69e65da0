import type { FastifyReply } from 'fastify';
import { RampartError } from '../../errors/problem.js';
import { rangeParameter } from '../../gateway/router.js';
import type { RequestContext } from '../../gateway/context.js';
import { linkTarget } from '../../gateway/versions.js';
import { definePolicy, type PolicyHooks } from '../define.js';
import { VersioningSchema } from './schema.js';

/**
 * The lifecycle of a route's API version (top-level `versions:`, a route's `version:`). Every
 * header string is built at load; per request: a `Date.now()` against the sunset, and the
 * successor's path when the version has one.
 */
export const versioningPolicy = definePolicy({
  name: 'versioning',
  // After CORS (a preflight to a retired route is still answered) and the per-IP limits (probing
  // a retired API costs the same), before authentication (a retired API needs no credentials to say so).
  phase: 'rate-limit-pre',
  priority: -100,
  enabledByDefault: true,
  description:
    'For routes of a version (`version:` on the route, `versions:` at the top level): `Deprecation`, `Sunset` and `Link` (successor-version, deprecation) on every response, `Vary` for versions chosen by header or media type, and 410 `RMP_VERSION_RETIRED` after the sunset.',
  schema: VersioningSchema,
  create(options, policyCtx) {
    const version = policyCtx.version;
    if (version === undefined) return {};
    const { deprecation, sunset, sunsetMs, sunsetIso, links, successorPath, select } = version;
    // A version chosen by query is in the URL already: caches tell them apart without Vary.
    const vary = select === undefined || select.kind === 'query' ? undefined : select.kind === 'header' ? select.name : 'accept';
    if (deprecation === undefined && sunset === undefined && successorPath === undefined && vary === undefined) return {};
    const link =
      successorPath === undefined
        ? links === undefined
          ? undefined
          : () => links
        : links === undefined
          ? (ctx: RequestContext) => `<${linkTarget(successorPath(ctx))}>; rel="successor-version"`
          : (ctx: RequestContext) => `<${linkTarget(successorPath(ctx))}>; rel="successor-version", ${links}`;
    const hooks: PolicyHooks = {
      response(ctx, reply) {
        if (deprecation !== undefined) reply.header('deprecation', deprecation);
        if (sunset !== undefined) reply.header('sunset', sunset);
        if (link !== undefined) append(reply, 'link', link(ctx));
        if (vary !== undefined) addVary(reply, vary);
      },
    };
    // A version chosen by an Accept parameter: the upstream gets only the ranges of the version the
    // gateway chose, so one reading the first range (not the best q) serves that same version.
    const narrow =
      select?.kind === 'mediaType'
        ? (ctx: RequestContext) => {
            const accept = ctx.request.raw.headers.accept;
            if (accept === undefined || !accept.includes('=')) return;
            let dropped = false;
            const kept: string[] = [];
            for (const range of accept.split(',')) {
              const { value } = rangeParameter(range, select.name);
              if (value !== undefined && value !== select.value) dropped = true;
              else kept.push(range.trim());
            }
            if (dropped) ctx.setUpstreamHeader('accept', kept.length === 0 ? `*/*; ${select.name}=${select.value}` : kept.join(', '));
          }
        : undefined;
    if (narrow !== undefined) hooks.request = narrow;
    if (options.retire && sunsetMs !== undefined) {
      const name = version.name;
      hooks.request = (ctx) => {
        if (Date.now() < sunsetMs) return narrow?.(ctx);
        const successor = successorPath === undefined ? undefined : successorPath(ctx);
        throw new RampartError('RMP_VERSION_RETIRED', {
          detail: `This API version was retired on ${sunsetIso!}${successor === undefined ? '' : `; its successor is at ${successor}`}.`,
          extensions: { version: name, sunset: sunsetIso, ...(successor === undefined ? {} : { successor }) },
        });
      };
    }
    return hooks;
  },
});

/** Adds a list item to a header the upstream may have sent already (its own `Link`s stay). */
function append(reply: FastifyReply, name: string, value: string): void {
  const current = reply.getHeader(name);
  if (current === undefined || current === '') reply.header(name, value);
  else reply.header(name, `${Array.isArray(current) ? current.join(', ') : String(current)}, ${value}`);
}

function addVary(reply: FastifyReply, value: string): void {
  const current = reply.getHeader('vary');
  if (current === undefined || current === '') reply.header('vary', value);
  else if (!String(current).toLowerCase().split(/\s*,\s*/).includes(value) && String(current) !== '*') reply.header('vary', `${String(current)}, ${value}`);
}
