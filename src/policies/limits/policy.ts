import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { RequestContext } from '../../gateway/context.js';
import contentType from 'fast-content-type-parse';
import { parseSize } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import { definePolicy } from '../define.js';
import { parseJsonBody, readBody, tooLarge } from '../../gateway/body.js';
import { LimitsSchema } from './schema.js';
import { XML_TYPE, createXmlCheck, xmlCharsetAllowed } from './xml.js';

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

const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json$/;

/** Depth, keys per object and items per array of a parsed JSON value, walked without recursion. */
function checkJsonShape(value: unknown, limits: { depth: number; keys: number; items: number }): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limits.depth) return `nested deeper than ${limits.depth} levels`;
    if (Array.isArray(node)) {
      if (node.length > limits.items) return `an array has more than ${limits.items} items`;
      for (const item of node) if (item !== null && typeof item === 'object') stack.push([item, depth + 1]);
    } else {
      const keys = Object.keys(node);
      if (keys.length > limits.keys) return `an object has more than ${limits.keys} keys`;
      for (const key of keys) {
        const child = (node as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
      }
    }
  }
  return undefined;
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
    const shape = options.json;
    const xml = createXmlCheck(options.xml);
    const responseBuffer = Object.freeze({ limit: parseSize(options.response.buffer), oversize: options.response.oversize });
    // JSON bodies are read whole (they are bounded by `body`), checked, and forwarded as the very
    // bytes that were checked, so the upstream parses exactly what the gateway validated.
    const checkJson = async (ctx: RequestContext): Promise<void> => {
      const bytes = await readBody(ctx.request.raw, body);
      const value = parseJsonBody(bytes);
      const problem = checkJsonShape(value, shape);
      if (problem !== undefined) throw new RampartError('RMP_JSON_LIMIT_EXCEEDED', { detail: `The JSON body is too complex: ${problem}.` });
      ctx.jsonBody = { bytes, value };
      ctx.requestBody = Readable.from([bytes]);
    };
    // XML bodies likewise: the upstream parses them itself, from the very bytes checked here.
    const checkXml = async (ctx: RequestContext, charset: string | undefined): Promise<void> => {
      const bytes = await readBody(ctx.request.raw, body);
      xml(bytes, charset);
      ctx.requestBody = Readable.from([bytes]);
    };
    return {
      responseBuffer,
      request(ctx) {
        const raw = ctx.request.raw;
        if (raw.url !== undefined && raw.url.length > url) {
          throw new RampartError('RMP_URL_TOO_LONG', { detail: `The request target is longer than ${url} bytes.` });
        }
        // HTTP/2 pseudo-headers (`:method`, `:path`, `:scheme`, `:authority`) are not header fields.
        if (raw.rawHeaders.length - (raw.httpVersionMajor === 2 ? pseudoHeaderCount(raw.rawHeaders) : 0) > headerFields) {
          throw new RampartError('RMP_REQUEST_HEADERS_TOO_LARGE', { detail: `The request has more than ${options.headers} header fields.` });
        }
        const te = raw.headers['transfer-encoding'];
        if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
          // Only plain `chunked` is framing both sides agree on; anything else is a smuggling attempt.
          throw new RampartError('RMP_REQUEST_MALFORMED', { detail: 'Transfer-Encoding must be exactly "chunked".' });
        }
        const declared = raw.headers['content-length'];
        const chunked = declared === undefined && te !== undefined;
        if (declared !== undefined && Number(declared) > body) throw tooLarge(body);
        if ((declared !== undefined && declared !== '0') || chunked) {
          const header = raw.headers['content-type'];
          // safeParse: a malformed header yields an empty type, which no allowlist entry matches.
          const { type, parameters } = header === undefined ? { type: '', parameters: {} } : contentType.safeParse(header);
          if (!acceptable(type)) {
            throw new RampartError('RMP_UNSUPPORTED_MEDIA_TYPE', { detail: 'This route does not accept a request body of this media type.' });
          }
          if (JSON_TYPE.test(type)) return checkJson(ctx);
          if (XML_TYPE.test(type)) {
            // The charset must agree with what the body is checked as; the upstream may decode by it.
            if (!xmlCharsetAllowed(parameters)) {
              throw new RampartError('RMP_UNSUPPORTED_MEDIA_TYPE', { detail: 'XML bodies must be UTF-8: a charset other than utf-8 or us-ascii is not accepted.' });
            }
            return checkXml(ctx, parameters.charset);
          }
        }
        if (chunked) ctx.requestBody = raw.pipe(new BodyLimit(body));
        return undefined;
      },
    };
  },
});

/** Entries (name and value) of `rawHeaders` taken by HTTP/2 pseudo-headers, which come first. */
function pseudoHeaderCount(rawHeaders: string[]): number {
  let n = 0;
  while (n < rawHeaders.length && rawHeaders[n]!.charCodeAt(0) === 58) n += 2;
  return n;
}
