import { Transform, type TransformCallback } from 'node:stream';
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
  description: 'Refuses requests whose target, header count or body exceed the limits.',
  schema: LimitsSchema,
  create(options) {
    const body = parseSize(options.body);
    const url = options.url;
    const headerFields = options.headers * 2;
    return {
      request(ctx) {
        const raw = ctx.request.raw;
        if (raw.url !== undefined && raw.url.length > url) {
          throw new RampartError('RMP_URL_TOO_LONG', { detail: `The request target is longer than ${url} bytes.` });
        }
        if (raw.rawHeaders.length > headerFields) {
          throw new RampartError('RMP_REQUEST_HEADERS_TOO_LARGE', { detail: `The request has more than ${options.headers} header fields.` });
        }
        const declared = raw.headers['content-length'];
        if (declared !== undefined) {
          if (Number(declared) > body) throw tooLarge(body);
        } else if (raw.headers['transfer-encoding'] !== undefined) {
          ctx.requestBody = raw.pipe(new BodyLimit(body));
        }
      },
    };
  },
});
