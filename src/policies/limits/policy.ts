import { Transform, type TransformCallback } from 'node:stream';
import contentType from 'fast-content-type-parse';
import { parseSize } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import { definePolicy } from '../define.js';
import { LimitsSchema } from './schema.js';

/** Counts a streamed (chunked) body and fails it past the limit; the proxy turns that into a 413. */
class BodyLimit extends Transform {
  #seen = 0;
  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.limit) callback(tooLarge(this.limit));
    else callback(null, chunk);
  }
}

/** `application/*+json` → /^application\/[^/]*\+json$/; precompiled at config load. */
function compileMediaTypes(patterns: readonly string[]): (type: string) => boolean {
  const exact = new Set<string>();
  const wildcards: RegExp[] = [];
  for (const p of patterns) {
    if (p.includes('*')) wildcards.push(new RegExp(`^${p.replace(/[.+^$|()[\]{}?\\/]/g, '\\$&').replace(/\*/g, '[^/]*')}$`));
    else exact.add(p);
  }
  return (type) => exact.has(type) || wildcards.some((w) => w.test(type));
}

function tooLarge(limit: number): RampartError {
  return new RampartError('RMP_BODY_TOO_LARGE', { detail: `The request body is larger than ${limit} bytes.` });
}

/**
 * Size limits on the request line, headers and body, in the transport phase, so that nothing
 * downstream — policies or the upstream — ever handles an oversized request.
 */
export const limitsPolicy = definePolicy({
  name: 'limits',
  phase: 'transport',
  priority: 950,
  enabledByDefault: true,
  description: 'Refuses requests whose target, header count or body exceed the limits, or whose body has a media type the route does not accept.',
  schema: LimitsSchema,
  create(options) {
    const body = parseSize(options.body);
    const url = options.url;
    const headerFields = options.headers * 2;
    const acceptable = compileMediaTypes(options.contentTypes);
    return {
      request(ctx) {
        const raw = ctx.request.raw;
        if (raw.url !== undefined && raw.url.length > url) {
          throw new RampartError('RMP_URL_TOO_LONG', { detail: `The request target is longer than ${url} bytes.` });
        }
        if (raw.rawHeaders.length > headerFields) {
          throw new RampartError('RMP_REQUEST_HEADERS_TOO_LARGE', { detail: `The request has more than ${options.headers} header fields.` });
        }
        const te = raw.headers['transfer-encoding'];
        if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
          // Only plain `chunked` is framing both sides agree on; anything else is a smuggling attempt.
          throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'Transfer-Encoding must be exactly "chunked".' });
        }
        const declared = raw.headers['content-length'];
        const chunked = declared === undefined && te !== undefined;
        if ((declared !== undefined && declared !== '0') || chunked) {
          const type = raw.headers['content-type'];
          // safeParse: a malformed header yields an empty type, which no allowlist entry matches.
          if (type === undefined || !acceptable(contentType.safeParse(type).type)) {
            throw new RampartError('RMP_UNSUPPORTED_MEDIA_TYPE', { detail: 'This route does not accept a request body of this media type.' });
          }
        }
        if (declared !== undefined) {
          if (Number(declared) > body) throw tooLarge(body);
        } else if (chunked) {
          ctx.requestBody = raw.pipe(new BodyLimit(body));
        }
      },
    };
  },
});
