import { definePolicy } from '../define.js';
import { RequestIdSchema } from './schema.js';

/** Characters that are safe in a header, a log line and a JSON string alike. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+=/-]*$/;

/**
 * Every request already has a generated UUID (problem bodies and logs need one even with this
 * policy off). This policy decides whether an incoming id replaces it, and carries it both ways.
 */
export const requestIdPolicy = definePolicy({
  name: 'request-id',
  phase: 'transport',
  priority: 1000,
  enabledByDefault: true,
  description: 'Accepts a safe incoming `X-Request-Id` or keeps the generated one, echoes it and passes it upstream.',
  schema: RequestIdSchema,
  create(options) {
    const { header, acceptIncoming, maxLength, echo, forward } = options;
    return {
      request(ctx) {
        if (acceptIncoming) {
          const incoming = ctx.request.raw.headers[header];
          if (typeof incoming === 'string' && incoming.length <= maxLength && SAFE_ID.test(incoming)) ctx.requestId = incoming;
        }
        if (forward) ctx.setUpstreamHeader(header, ctx.requestId);
      },
      response: echo
        ? (ctx, reply) => {
            reply.header(header, ctx.requestId);
          }
        : undefined,
    };
  },
});
