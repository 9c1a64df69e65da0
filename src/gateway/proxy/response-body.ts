import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { hasDuplicateKeys } from '../json-text.js';
import { Writable } from 'node:stream';
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import type { FastifyReply } from 'fastify';
import secureJson from 'secure-json-parse';
import { RampartError } from '../../errors/problem.js';
import type { BufferedResponse, RequestContext } from '../context.js';
import { runResponseHooks } from '../plugin.js';
import { clientResponseHeaders } from './headers.js';

/**
 * The response engine of the proxy: what happens to an upstream answer once its head arrived.
 *
 * - `responseHead` hooks judge it by status and headers; a refusal discards the body (read to
 *   the end within the route's bound so the connection is reused, cut past it).
 * - On a route with `responseBody` filters, a JSON answer (`application/json`, `application/*+json`)
 *   is held whole within the bound, decompressed if the upstream compressed it anyway, parsed once
 *   (`__proto__` / `constructor.prototype` refused), filtered, and serialized again only if a
 *   filter changed it. An answer with no `Content-Type` or `text/plain` whose body starts with `{`
 *   or `[` is treated the same way (clients parse such answers as JSON); any other start streams.
 * - With `ctx.responseChecks` (authorize response rules), every answer is held, whatever its type
 *   or status, and over the bound it is always refused: a check is never skipped.
 * - Anything else, HEAD answers and 1xx/204/304 (no body) stream through untouched.
 */

const STREAM = 0;
/** Claims JSON: parsed, refused if it does not parse. */
const JSON_BODY = 1;
/**
 * No type, a text type, `application/octet-stream`, or a type that only says `json` somewhere
 * (`text/json`, `application/x-json`): parsed if it looks like JSON, else sent as it is — clients
 * (`fetch().json()`, axios) parse such answers whatever their label.
 */
const SNIFF = 2;
/** Held for the checks only (not JSON, or no body). */
const RAW = 3;

const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json$/;

/** Response headers that describe the exact bytes: wrong once the body is rewritten. */
const VALIDATORS = ['etag', 'content-md5', 'digest', 'content-digest', 'repr-digest', 'last-modified', 'accept-ranges'];

/** Media type, lowercased, without parameters; '' when absent or repeated. */
export function mediaTypeOf(header: string | string[] | undefined): string {
  if (typeof header !== 'string') return '';
  // A list (`application/json, text/html`) names no one type: the body decides (sniffed).
  if (header.includes(',')) return '';
  const semi = header.indexOf(';');
  return (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
}

function hasNoBody(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || status < 200;
}

function holdKind(method: string, status: number, mediaType: string, checks: boolean): number {
  if (hasNoBody(method, status)) return checks ? RAW : STREAM;
  if (JSON_TYPE.test(mediaType)) return JSON_BODY;
  if (mediaType === '' || mediaType.startsWith('text/') || mediaType === 'application/octet-stream' || mediaType.includes('json')) return SNIFF;
  return checks ? RAW : STREAM;
}

/** `Content-Encoding`, lowercased; '' for none or identity. */
function encodingOf(headers: IncomingHttpHeaders): string {
  const value = headers['content-encoding'] as string | string[] | undefined;
  if (value === undefined) return '';
  // Repeated headers are one list (`gzip, identity`), which is refused as an unknown encoding.
  const encoding = (Array.isArray(value) ? value.join(', ') : value).trim().toLowerCase();
  return encoding === 'identity' ? '' : encoding;
}

function declaredLength(headers: IncomingHttpHeaders): number {
  const value = headers['content-length'];
  return value === undefined ? -1 : Number(value);
}

function tooLarge(limit: number): RampartError {
  return new RampartError('RMP_RESPONSE_TOO_LARGE', { detail: `The upstream's answer is larger than the ${limit} bytes the gateway may hold to filter it.` });
}

function invalid(detail: string): RampartError {
  return new RampartError('RMP_RESPONSE_INVALID', { detail });
}

/**
 * Writes the upstream's head to the client (after the response phase) and hands the response
 * over to the caller, which writes the body into it.
 */
export function sendHead(ctx: RequestContext, reply: FastifyReply, status: number, headers: IncomingHttpHeaders): ServerResponse {
  reply.code(status);
  reply.headers(clientResponseHeaders(headers));
  runResponseHooks(ctx, reply);
  const res = reply.raw;
  res.writeHead(status, reply.getHeaders() as OutgoingHttpHeaders);
  // From here on the response is ours, not Fastify's.
  reply.hijack();
  return res;
}

/** Where the undici factory writes an answer the engine takes over. */
export interface Intercepted extends Writable {
  /** Why the answer is refused, once that is known. */
  readonly refusal: RampartError | undefined;
  /** Once the upstream's body is done: sends what the client gets, or throws the refusal. */
  settle(ctx: RequestContext, reply: FastifyReply): void;
}

/**
 * At the undici factory: the sink for an answer the engine takes over, or undefined when it
 * streams through untouched. `filtering`: the route has body filters or the request has checks.
 */
export function intercept(ctx: RequestContext, reply: FastifyReply, status: number, headers: IncomingHttpHeaders, filtering: boolean): Intercepted | undefined {
  const route = ctx.route;
  const heads = route.headHooks;
  for (let i = 0; i < heads.length; i++) {
    try {
      heads[i]!(ctx, status, headers);
    } catch (error) {
      const refusal = error instanceof RampartError ? error : new RampartError('RMP_INTERNAL', { cause: error });
      return new Discarded(refusal, status, route.keepRefusedBody, route.responseBuffer.limit);
    }
  }
  if (!filtering) return undefined;
  const checks = ctx.responseChecks !== undefined;
  const mediaType = mediaTypeOf(headers['content-type']);
  const kind = holdKind(ctx.request.method, status, mediaType, checks);
  if (kind === STREAM) return undefined;
  const buffer = route.responseBuffer;
  const refuse = checks || buffer.oversize === 'refuse';
  const encoding = encodingOf(headers);
  // A declared length over the bound is decided now (a sniffed answer may still turn out not to
  // be JSON and stream). A compressed body only grows once decompressed.
  if ((kind !== SNIFF || encoding !== '') && !hasNoBody(ctx.request.method, status)) {
    if (declaredLength(headers) > buffer.limit) {
      if (refuse) return new Discarded(tooLarge(buffer.limit), status, 0, 0);
      unfiltered(ctx, status, 'declared larger than the bound', buffer.limit);
      return undefined;
    }
  }
  return new Held(ctx, reply, status, headers, mediaType, kind, encoding, refuse);
}

/** An answer sent unfiltered past the bound (`oversize: stream`): never silent. */
function unfiltered(ctx: RequestContext, status: number, reason: string, limit: number): void {
  const event = {
    type: 'response_unfiltered',
    level: 'WARN' as const,
    description: `upstream answer sent unfiltered: ${reason}`,
    requestId: ctx.requestId,
    clientIp: ctx.clientIp,
    route: ctx.route.name,
    data: { reason, limit, status },
  };
  const events = ctx.pipeline.events;
  if (events !== undefined) events.emit(event);
  else ctx.pipeline.logger.warn({ type: 'event', event: event.type, requestId: ctx.requestId, route: ctx.route.name, data: event.data }, event.description);
}

/** The body of an answer refused at its head: read and dropped, its first bytes kept for the log. */
class Discarded extends Writable implements Intercepted {
  readonly refusal: RampartError;
  readonly #status: number;
  readonly #keep: number;
  readonly #limit: number;
  #kept: Buffer[] | undefined;
  #keptSize = 0;
  #size = 0;

  constructor(refusal: RampartError, status: number, keep: number, limit: number) {
    super();
    this.refusal = refusal;
    this.#status = status;
    this.#keep = keep;
    this.#limit = limit;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#size += chunk.length;
    if (this.#keptSize < this.#keep) {
      const part = chunk.length <= this.#keep - this.#keptSize ? chunk : chunk.subarray(0, this.#keep - this.#keptSize);
      (this.#kept ??= []).push(part);
      this.#keptSize += part.length;
    }
    // Past the bound, reading on is not worth the connection: undici closes it.
    callback(this.#size > this.#limit ? this.refusal : null);
  }

  settle(ctx: RequestContext): never {
    if (this.#keep > 0) {
      const body = this.#kept === undefined ? '' : Buffer.concat(this.#kept, this.#keptSize).toString('utf8');
      ctx.pipeline.logger.warn({ requestId: ctx.requestId, route: ctx.route.name, upstreamStatus: this.#status, upstreamBody: body, upstreamBodyBytes: this.#size, code: this.refusal.code }, 'upstream answer refused');
    }
    // A replaced 5xx, an undeclared answer: a security event, like every other filter's (never its body).
    ctx.pipeline.events?.emit({
      type: 'response_refused',
      level: 'WARN',
      description: 'an upstream answer was not sent: the client got a problem instead',
      requestId: ctx.requestId,
      clientIp: ctx.clientIp,
      route: ctx.route.name,
      ...(ctx.consumer === undefined ? {} : { actor: ctx.consumer.id }),
      data: { problem: this.refusal.code, upstreamStatus: this.#status },
    });
    throw this.refusal;
  }
}

/** An answer held whole for the checks and filters. */
class Held extends Writable implements Intercepted {
  refusal: RampartError | undefined;
  readonly #ctx: RequestContext;
  readonly #reply: FastifyReply;
  readonly #status: number;
  readonly #headers: IncomingHttpHeaders;
  readonly #mediaType: string;
  readonly #kind: number;
  readonly #encoding: string;
  readonly #refuse: boolean;
  readonly #limit: number;
  #sniffing: boolean;
  #chunks: Buffer[] = [];
  #size = 0;
  /** Set once the answer streams (not JSON after all, or past the bound with `oversize: stream`). */
  #out: ServerResponse | undefined;

  constructor(ctx: RequestContext, reply: FastifyReply, status: number, headers: IncomingHttpHeaders, mediaType: string, kind: number, encoding: string, refuse: boolean) {
    super();
    this.#ctx = ctx;
    this.#reply = reply;
    this.#status = status;
    this.#headers = headers;
    this.#mediaType = mediaType;
    this.#kind = kind;
    this.#encoding = encoding;
    this.#refuse = refuse;
    this.#limit = ctx.route.responseBuffer.limit;
    // Checks hold every answer; only filters let a sniffed non-JSON answer go.
    this.#sniffing = kind === SNIFF && encoding === '' && ctx.responseChecks === undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#out !== undefined) return pass(this.#out, chunk, callback);
    if (this.#sniffing) {
      const first = firstNonSpace(chunk);
      if (first !== -1) {
        this.#sniffing = false;
        // Not the start of a JSON object or array: not JSON, sent as it comes.
        if (first !== 0x7b && first !== 0x5b) return this.#stream(chunk, callback);
      }
    }
    this.#size += chunk.length;
    if (this.#size > this.#limit) {
      if (this.#refuse) {
        this.refusal = tooLarge(this.#limit);
        callback(this.refusal);
        return;
      }
      unfiltered(this.#ctx, this.#status, 'larger than the bound', this.#limit);
      return this.#stream(chunk, callback);
    }
    this.#chunks.push(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#out !== undefined) this.#out.end(callback);
    else callback();
  }

  /** Sends the head and what was held, then streams the rest as it comes. */
  #stream(chunk: Buffer, callback: (error?: Error | null) => void): void {
    const out = sendHead(this.#ctx, this.#reply, this.#status, this.#headers);
    this.#out = out;
    for (const held of this.#chunks) out.write(held);
    this.#chunks = [];
    pass(out, chunk, callback);
  }

  settle(ctx: RequestContext, reply: FastifyReply): void {
    if (this.refusal !== undefined) throw this.refusal;
    if (this.#out !== undefined) return;
    const route = ctx.route;
    const chunks = this.#chunks;
    const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    this.#chunks = [];
    let body: Buffer = raw;
    let decoded = false;
    let kind = this.#kind;
    if (this.#encoding !== '' && kind !== RAW && raw.length > 0) {
      const plain = decompress(raw, this.#encoding, this.#limit);
      if (plain === undefined) throw invalid(`The upstream's answer is compressed ('${this.#encoding.slice(0, 32)}') in a way the gateway cannot filter.`);
      if (plain === OVERSIZE) {
        if (this.#refuse) throw tooLarge(this.#limit);
        unfiltered(ctx, this.#status, 'larger than the bound once decompressed', this.#limit);
        sendHead(ctx, reply, this.#status, this.#headers).end(raw);
        return;
      }
      body = plain;
      decoded = true;
    }
    let json: unknown;
    let parsed = false;
    let text = '';
    if ((kind === JSON_BODY || kind === SNIFF) && body.length > 0) {
      if (kind === SNIFF && !startsLikeJson(body)) kind = RAW;
      else {
        try {
          text = body.toString('utf8');
          json = secureJson.parse(text, null, { protoAction: 'error', constructorAction: 'error' });
          parsed = true;
        } catch (error) {
          const proto = (error as Error).message === 'Object contains forbidden prototype property';
          // A sniffed body that is not JSON goes as it is; one that is JSON with a prototype key
          // would reach a client's JSON.parse unfiltered.
          if (kind === JSON_BODY || proto) throw invalid(proto ? "The upstream's JSON answer has a __proto__ or constructor.prototype key." : "The upstream's answer says it is JSON but does not parse.");
        }
      }
    }
    const response: BufferedResponse = { status: this.#status, mediaType: this.#mediaType, json, changed: false };
    const checks = ctx.responseChecks;
    if (checks !== undefined) for (let i = 0; i < checks.length; i++) checks[i]!(response);
    if (parsed) {
      const filters = route.bodyFilters;
      for (let i = 0; i < filters.length; i++) filters[i]!(ctx, response);
    }
    // A repeated key hides its first value from the checks and filters (the last one wins):
    // such an answer goes out as what was checked, never as the upstream's bytes.
    if (parsed && !response.changed && (checks !== undefined || route.bodyFilters.length > 0) && hasDuplicateKeys(text)) response.changed = true;
    // The gateway asked for the whole answer (Range is not forwarded on filtered routes): a part of
    // it, rewritten, would carry a Content-Range that no longer describes it.
    if (response.changed && this.#status === 206) throw invalid("The upstream's partial (206) answer cannot be filtered.");
    if (response.changed) {
      let out: string | undefined;
      try {
        out = JSON.stringify(response.json);
      } catch (error) {
        throw new RampartError('RMP_RESPONSE_INVALID', { detail: 'The filtered answer could not be serialized.', cause: error });
      }
      body = Buffer.from(out ?? 'null', 'utf8');
    }
    const headers = clientResponseHeaders(this.#headers);
    if (decoded) delete headers['content-encoding'];
    if (decoded || response.changed) for (const name of VALIDATORS) delete headers[name];
    const noBody = hasNoBody(ctx.request.method, this.#status);
    if (!noBody) headers['content-length'] = String(body.length);
    reply.code(this.#status);
    reply.headers(headers);
    runResponseHooks(ctx, reply);
    const res = reply.raw;
    res.writeHead(this.#status, reply.getHeaders() as OutgoingHttpHeaders);
    reply.hijack();
    res.end(noBody ? undefined : body);
  }
}

/** Writes with backpressure: the upstream is read no faster than the client takes it. */
function pass(out: ServerResponse, chunk: Buffer, callback: (error?: Error | null) => void): void {
  if (out.write(chunk)) callback();
  else out.once('drain', () => callback());
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function firstNonSpace(chunk: Buffer): number {
  // A UTF-8 byte-order mark first: JSON parsers (and browsers) skip it.
  const from = chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
  for (let i = from; i < chunk.length; i++) if (!isSpace(chunk[i]!)) return chunk[i]!;
  return -1;
}

function startsLikeJson(body: Buffer): boolean {
  const first = firstNonSpace(body);
  return first === 0x7b || first === 0x5b;
}

const OVERSIZE = Symbol('oversize');

/**
 * Decompresses within `limit` bytes of output (zlib stops past it: a bomb costs at most `limit`);
 * undefined for an encoding the gateway does not decode, or a corrupt body.
 */
function decompress(body: Buffer, encoding: string, limit: number): Buffer | typeof OVERSIZE | undefined {
  const options = { maxOutputLength: Math.max(limit, 1) };
  try {
    if (encoding === 'gzip' || encoding === 'x-gzip') return gunzipSync(body, options);
    if (encoding === 'br') return brotliDecompressSync(body, options);
    if (encoding === 'deflate') {
      // RFC 9110 says zlib-wrapped; some servers send raw deflate.
      try {
        return inflateSync(body, options);
      } catch (error) {
        if (isTooLarge(error)) throw error;
        return inflateRawSync(body, options);
      }
    }
    return undefined;
  } catch (error) {
    return isTooLarge(error) ? OVERSIZE : undefined;
  }
}

function isTooLarge(error: unknown): boolean {
  return (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
}
