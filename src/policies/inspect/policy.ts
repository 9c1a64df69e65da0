import { Readable } from 'node:stream';
import contentType from 'fast-content-type-parse';
import type { RequestContext } from '../../gateway/context.js';
import { parseJsonBody, readBody, tooLarge } from '../../gateway/body.js';
import { parseSize } from '../../config/units.js';
import { RampartError } from '../../errors/problem.js';
import { definePolicy } from '../define.js';
import { InspectSchema } from './schema.js';
import { MAX_FINDINGS, type Finding } from './findings.js';
import { jsonMayOffend, scanJson, type JsonRules } from './json.js';
import { checkForm, checkParam, checkQuery, type UrlRules } from './url.js';

/** The media types `limits` reads as JSON (kept in step with src/policies/limits/policy.ts). */
const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json$/;
const FORM_TYPE = 'application/x-www-form-urlencoded';

const NUL_HEADER_DETAIL = 'A NUL character is not accepted.';

/**
 * Injection checks on the string inputs typed validation lets through as free text. Runs in the
 * validate phase after `openapi` (priority 500), so a request is first checked against its
 * contract and then for payloads that fit any string. Everything is decided here, at config load;
 * per request, inputs without a `%`, `$` or backslash cost a few searches.
 */
export const inspectPolicy = definePolicy({
  name: 'inspect',
  phase: 'validate',
  priority: 400,
  enabledByDefault: true,
  description: 'Refuses NoSQL operator keys, NUL bytes, CR/LF in header-bound values and path traversal in path parameters (400 `RMP_INPUT_REJECTED`), each rule switchable per route.',
  schema: InspectSchema,
  create(options, { events }) {
    const url: UrlRules = {
      nosqlOperators: options.nosqlOperators,
      anyDollarKey: options.anyDollarKey,
      nulBytes: options.nulBytes,
      crlf: options.crlf,
      pathTraversal: options.pathTraversal,
      separators: options.separators,
    };
    const fields = options.crlf ? options.crlfFields : [];
    const json: JsonRules = {
      nosqlOperators: options.nosqlOperators,
      anyDollarKey: options.anyDollarKey,
      nulBytes: options.nulBytes,
      crlfNames: new Set(fields.filter((f) => !f.startsWith('/'))),
      crlfPointers: new Set(fields.filter((f) => f.startsWith('/'))),
    };
    const checkQueries = url.nosqlOperators || url.nulBytes || url.crlf;
    const checkParams = url.nulBytes || url.crlf || url.pathTraversal;
    const checkBody = json.nosqlOperators || json.nulBytes || json.crlfNames.size > 0 || json.crlfPointers.size > 0;
    const checkForms = url.nosqlOperators || url.nulBytes || json.crlfNames.size > 0;
    const checkHeaders = url.nulBytes;
    if (!checkQueries && !checkParams && !checkBody && !checkForms) return {};
    const maxBody = parseSize(options.maxBody);

    /** Header, path and query problems, in that order. */
    const inspectUrl = (ctx: RequestContext, out: Finding[]): void => {
      if (checkHeaders) {
        const raw = ctx.request.raw.rawHeaders;
        for (let i = 1; i < raw.length && out.length < MAX_FINDINGS; i += 2) {
          if (raw[i]!.includes('\0')) out.push({ rule: 'nulBytes', pointer: '/header/' + raw[i - 1]!.toLowerCase(), detail: NUL_HEADER_DETAIL });
        }
      }
      if (checkParams) {
        const params = ctx.params;
        for (const name in params) {
          const value = params[name];
          if (value !== undefined && value !== '' && out.length < MAX_FINDINGS) checkParam(name, value, name === '*', url, out);
        }
      }
      const query = ctx.query;
      if (checkQueries && query.length > 1 && (query.includes('%') || query.includes('$'))) checkQuery(query, url, out);
    };

    const inspectBody = (bytes: Buffer, out: Finding[]): void => {
      if (out.length < MAX_FINDINGS && jsonMayOffend(bytes, json)) scanJson(bytes.toString('utf8'), json, out);
    };

    const inspectForm = (bytes: Buffer, out: Finding[]): void => {
      // Only an escape, a `$`, or a raw NUL, CR or LF can make a form field offend.
      if (bytes.indexOf(0x25) !== -1 || bytes.indexOf(0x24) !== -1 || bytes.indexOf(0) !== -1 || bytes.indexOf(0x0d) !== -1 || bytes.indexOf(0x0a) !== -1) {
        checkForm(bytes.toString('utf8'), url, json.crlfNames, out);
      }
    };

    const refuse = (ctx: RequestContext, findings: Finding[]): never => {
      const first = findings[0]!;
      ctx.evented = true;
      events.emit({
        type: 'input_validation_fail',
        level: 'WARN',
        description: `input refused by inspect (${first.rule})`,
        args: [first.pointer],
        ...(ctx.consumer !== undefined ? { actor: ctx.consumer.id } : {}),
        requestId: ctx.requestId,
        clientIp: ctx.clientIp,
        route: ctx.route.name,
        data: { rule: first.rule, pointer: first.pointer, count: findings.length },
      });
      throw new RampartError('RMP_INPUT_REJECTED', {
        detail: findings.length === 1 ? first.detail : `${findings.length} inputs are not accepted; see errors.`,
        extensions: { errors: findings.map((f) => ({ pointer: f.pointer, detail: f.detail })) },
      });
    };

    // With `limits` off on the route, nobody has read a JSON body yet: read it here, within
    // maxBody, and hand it on the same way (`ctx.jsonBody`, and those very bytes forwarded).
    const readJson = async (ctx: RequestContext, limit: number): Promise<void> => {
      const bytes = await readWhole(ctx, limit);
      ctx.jsonBody = { bytes, value: parseJsonBody(bytes) };
      const findings: Finding[] = [];
      inspectBody(bytes, findings);
      if (findings.length > 0) refuse(ctx, findings);
    };

    // Form bodies stream through `limits` unread: read them here, within maxBody, and forward those bytes.
    const readForm = async (ctx: RequestContext, limit: number): Promise<void> => {
      const bytes = await readWhole(ctx, limit);
      const findings: Finding[] = [];
      inspectForm(bytes, findings);
      if (findings.length > 0) refuse(ctx, findings);
    };

    return {
      request(ctx) {
        // Already refused (no route, malformed): it gets that answer, and costs no more work.
        if (ctx.refusal !== undefined) return undefined;
        const findings: Finding[] = [];
        inspectUrl(ctx, findings);
        // A body still to be read is not read for a request already refused.
        if (findings.length > 0) refuse(ctx, findings);
        const body = ctx.jsonBody;
        if (body !== undefined) {
          if (checkBody) inspectBody(body.bytes, findings);
          if (findings.length > 0) refuse(ctx, findings);
          return undefined;
        }
        // Only a body the gateway itself passes on (to the upstream, or a built-in handler, from
        // ctx.requestBody): in library mode the host app's handlers read theirs from the raw stream.
        if ((!checkBody && !checkForms) || !ctx.matched || (ctx.route.upstream === undefined && ctx.route.handler === undefined)) return undefined;
        const kind = unreadBody(ctx);
        if (kind === 'json' && checkBody) return readJson(ctx, maxBody);
        if (kind === 'form' && checkForms) return readForm(ctx, maxBody);
        return undefined;
      },
    };
  },
});

/** The request declares a body of a kind this policy reads: JSON (that nothing has parsed yet) or a form. */
function unreadBody(ctx: RequestContext): 'json' | 'form' | undefined {
  const headers = ctx.request.raw.headers;
  const declared = headers['content-length'];
  const chunked = declared === undefined && headers['transfer-encoding'] !== undefined;
  if (!chunked && (declared === undefined || declared === '0')) return undefined;
  const header = headers['content-type'];
  if (header === undefined) return undefined;
  const type = contentType.safeParse(header).type;
  return JSON_TYPE.test(type) ? 'json' : type === FORM_TYPE ? 'form' : undefined;
}

/** Reads the request body (the stream a policy before this one wrapped, if any) within `limit` bytes. */
async function readWhole(ctx: RequestContext, limit: number): Promise<Buffer> {
  const declared = ctx.request.raw.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const bytes = await readBody(ctx.requestBody ?? ctx.request.raw, limit);
  ctx.requestBody = Readable.from([bytes]);
  return bytes;
}
