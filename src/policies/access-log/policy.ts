import { performance } from 'node:perf_hooks';
import { redactQuery } from '../../observability/redact.js';
import { definePolicy } from '../define.js';
import { AccessLogSchema } from './schema.js';

/**
 * `bytesOut` counts what was written to the client connection for this response, headers included.
 *
 * One JSON line per request, after the response is finished (or the client went away): request
 * id, route, method, path (query redacted), status, latency, bytes, client ip, upstream target,
 * trace id;
 * for a route of an API version, the version (and `deprecated: true`: who still calls it).
 */
export const accessLogPolicy = definePolicy({
  name: 'access-log',
  phase: 'observe',
  enabledByDefault: true,
  description: 'Writes one structured, redacted JSON line per request.',
  schema: AccessLogSchema,
  create(options, ctx) {
    const logger = ctx.logger;
    const level = options.level;
    const query = options.query;
    const version = ctx.version?.name;
    const deprecated = ctx.version?.deprecation !== undefined;
    return {
      log(rc, reply) {
        if (!logger.isLevelEnabled(level)) return;
        const raw = reply.raw;
        const socket = rc.socket;
        const declared = rc.request.raw.headers['content-length'];
        const path = query === 'drop' || rc.query === '' ? rc.path : query === 'keep' ? rc.path + rc.query : redactQuery(rc.path + rc.query);
        const line: Record<string, unknown> = {
          type: 'access',
          requestId: rc.requestId,
          route: rc.matched ? rc.route.name : null,
          method: rc.request.method,
          path,
          status: raw.statusCode,
          latencyMs: Math.round((performance.now() - rc.startTime) * 1000) / 1000,
          // Declared body size, else what the connection read while this request was served.
          bytesIn: declared !== undefined ? Number(declared) || 0 : Math.max(0, (socket?.bytesRead ?? 0) - rc.bytesReadStart),
          bytesOut: (socket?.bytesWritten ?? 0) - rc.bytesWrittenStart,
          clientIp: rc.clientIp,
          upstream: rc.target ?? null,
          errorCode: rc.errorCode ?? null,
          traceId: rc.traceId ?? null,
          aborted: !raw.writableFinished,
        };
        if (version !== undefined && rc.matched) {
          line.version = version;
          if (deprecated) line.deprecated = true;
        }
        logger[level](line, 'request');
      },
    };
  },
});
