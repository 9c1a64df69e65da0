import { Readable } from 'node:stream';
import { definePolicy } from '../define.js';
import { OpenApiSchema } from './schema.js';
import { RampartError } from '../../errors/problem.js';
import { readOpenApi } from '../../openapi/document.js';
import type { ValidateFunction } from 'ajv';
import { checkParameters, compileApi, isJsonRange, matchMedia, requestMediaType, type CompiledOperation, type CompiledResponse } from '../../openapi/compile.js';
import { applyPlan } from '../../openapi/allowlist.js';
import { summarizePaths } from '../json-walk.js';
import { MAX_ERRORS, toValidationErrors, type ValidationError } from '../../openapi/schema.js';
import { parseJsonBody, readBody } from '../../gateway/body.js';
import type { RequestContext } from '../../gateway/context.js';
import type { Events } from '../../observability/events.js';
import querystring from 'fast-querystring';

const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/** Bodies this policy reads itself (when `limits` did not): `limits.body` bounds them first. */
const MAX_READ = 16 * 1024 * 1024;

/**
 * Requests checked against the operation the API's own OpenAPI document describes, and its
 * answers cut down to what that document declares. Everything is compiled at config load; per
 * request: one router lookup, and one ajv call per parameter location and for the body.
 */
export const openApiPolicy = definePolicy({
  name: 'openapi',
  phase: 'validate',
  priority: 500,
  // On everywhere, but idle unless the route or its upstream names a document.
  enabledByDefault: true,
  description: 'Validates requests against the OpenAPI document of the API and removes undeclared properties from its JSON answers.',
  schema: OpenApiSchema,
  create(options, ctx) {
    const file = options.spec ?? ctx.openapi;
    if (file === undefined) return {};
    const doc = readOpenApi(file, ctx.configDir);
    const api = compileApi(doc);
    if (api.unknownFormats.length > 0) {
      ctx.logger.warn({ route: ctx.route, spec: doc.file, formats: api.unknownFormats }, 'the OpenAPI document uses formats no validator knows: they are not checked');
    }
    const base = options.basePath ?? doc.serverPath;
    const strict = options.strict;
    const validateRequests = options.request;
    const allowUnknownQuery = options.unknownQuery === 'allow';
    const allowlist = options.response.allowlist;
    const refuseUndeclared = options.response.undeclared === 'refuse';
    const events = ctx.events;
    const logger = ctx.logger;

    const relative = (path: string): string | undefined => {
      if (base === '') return path;
      if (!path.startsWith(base)) return undefined;
      if (path.length === base.length) return '/';
      return path.charCodeAt(base.length) === 47 ? path.slice(base.length) : undefined;
    };

    return {
      // Method-override headers would let an upstream's middleware run an operation other than
      // the one validated (a DELETE the document does not have): never forwarded.
      ...(strict ? { hides: METHOD_OVERRIDES } : {}),
      request(c) {
        const path = relative(c.route.mapPath(c));
        const method = c.request.method;
        const matched = path === undefined ? undefined : api.match(method, path);
        if (matched === undefined) {
          if (!strict) return undefined;
          const allow = path === undefined ? [] : api.allowed(path);
          if (allow.length > 0) throw new RampartError('RMP_METHOD_NOT_ALLOWED', { detail: `${method} is not allowed here.`, headers: { allow: allow.join(', ') } });
          throw new RampartError('RMP_ROUTE_NOT_FOUND', { detail: 'No route matches this request.' });
        }
        const operation = matched.operation;
        c.operation = operation;
        if (!validateRequests) return undefined;
        const errors: ValidationError[] = [];
        const raw = c.request.raw;
        checkParameters(operation, { query: c.query, headers: raw.headers, pathParams: matched.params }, allowUnknownQuery, errors);
        const declaredLength = raw.headers['content-length'];
        const hasBody = (declaredLength !== undefined && declaredLength !== '0') || raw.headers['transfer-encoding'] !== undefined;
        const body = operation.body;
        if (!hasBody) {
          if (body?.required === true) errors.push({ pointer: '/body', detail: 'is required' });
          return finish(c, operation, errors, events);
        }
        if (body === undefined) {
          errors.push({ pointer: '/body', detail: 'this operation takes no request body' });
          return finish(c, operation, errors, events);
        }
        const type = requestMediaType(raw.headers['content-type']);
        const media = matchMedia(body.media, type);
        if (media === undefined) {
          throw new RampartError('RMP_UNSUPPORTED_MEDIA_TYPE', {
            detail: `This operation takes a body of type ${body.accepted}.`,
            extensions: { errors: [{ pointer: '/header/content-type', detail: `must be ${body.media.length === 1 ? '' : 'one of '}${body.accepted}` }] },
          });
        }
        // The request's own type decides how its body is read: a JSON body under `*/*` is JSON.
        const validate = isJsonRange(type) ? media.json : type === 'application/x-www-form-urlencoded' ? media.form : undefined;
        if (validate === undefined) return finish(c, operation, errors, events);
        if (validate === media.json && c.jsonBody !== undefined) {
          checkBody(validate, c.jsonBody.value, errors);
          return finish(c, operation, errors, events);
        }
        return readAndCheck(c, validate, validate === media.json).then((bodyErrors) => finish(c, operation, [...errors, ...bodyErrors], events));
      },
      // Decided at the head, for every answer (not only those held as JSON): an answer the document
      // does not declare — its status, or its media type (`text/json`, `text/html` where only
      // `application/json` is declared) — is refused before any of it is read.
      responseHead(c, status, headers) {
        if (!allowlist || !refuseUndeclared || status >= 400) return;
        const operation = c.operation as CompiledOperation | undefined;
        if (operation === undefined) return;
        const declared = responseFor(operation, status);
        let undeclared = declared === undefined;
        if (!undeclared && status !== 204 && status !== 304 && c.request.method !== 'HEAD') {
          const header = headers['content-type'];
          const type = typeof header === 'string' ? requestMediaType(header) : '';
          if (declared!.content === undefined) undeclared = header !== undefined;
          else if (type !== '') undeclared = matchMedia(declared!.content, type) === undefined;
        }
        if (undeclared) {
          logger.warn({ requestId: c.requestId, route: c.route.name, operation: operation.label, status, contentType: headers['content-type'] }, 'the upstream answered with a response the OpenAPI document does not declare: refused');
          throw new RampartError('RMP_RESPONSE_UNDECLARED');
        }
      },
      responseBody(c, response) {
        if (!allowlist) return;
        const operation = c.operation as CompiledOperation | undefined;
        if (operation === undefined) return;
        const status = response.status;
        const declared = responseFor(operation, status);
        const media = declared?.content === undefined ? undefined : matchMedia(declared.content, response.mediaType);
        if (media === undefined) {
          if (status >= 400) return;
          if (refuseUndeclared) {
            logger.warn({ requestId: c.requestId, route: c.route.name, operation: operation.label, status, mediaType: response.mediaType }, 'the upstream answered with a response the OpenAPI document does not declare: refused');
            throw new RampartError('RMP_RESPONSE_UNDECLARED');
          }
          logger.warn({ requestId: c.requestId, route: c.route.name, operation: operation.label, status, mediaType: response.mediaType }, 'the upstream answered with a response the OpenAPI document does not declare: sent unfiltered');
          return;
        }
        const removed = applyPlan(response.json, media.plan);
        if (removed === undefined) return;
        response.changed = true;
        events.emit({
          type: 'response_redacted',
          level: 'WARN',
          description: 'undeclared properties removed from an upstream answer',
          requestId: c.requestId,
          clientIp: c.clientIp,
          route: c.route.name,
          ...(c.consumer === undefined ? {} : { actor: c.consumer.id }),
          data: { filter: 'allowlist', operation: operation.label, status, count: removed.count, paths: summarizePaths(removed.paths) },
        });
      },
    };
  },
});

function responseFor(operation: CompiledOperation, status: number): CompiledResponse | undefined {
  return operation.responses.get(String(status)) ?? operation.responses.get(`${Math.floor(status / 100)}XX`) ?? operation.responses.get('default');
}

function checkBody(validate: ValidateFunction, value: unknown, errors: ValidationError[]): void {
  if (!validate(value)) toValidationErrors(validate.errors, '/body', errors);
}

/** Reads a body `limits` did not parse (a form, or JSON when `limits` is off), and forwards exactly those bytes. */
async function readAndCheck(c: RequestContext, validate: ValidateFunction, json: boolean): Promise<ValidationError[]> {
  const bytes = await readBody(c.requestBody ?? c.request.raw, MAX_READ);
  c.requestBody = Readable.from([bytes]);
  const errors: ValidationError[] = [];
  if (json) {
    const value = parseJsonBody(bytes);
    c.jsonBody = { bytes, value };
    checkBody(validate, value, errors);
  } else {
    checkBody(validate, querystring.parse(bytes.toString('utf8')), errors);
  }
  return errors;
}

function finish(c: RequestContext, operation: CompiledOperation, all: ValidationError[], events: Events): void {
  if (all.length === 0) return;
  // At most MAX_ERRORS are listed (and reported); the count says how many there were.
  const errors = all.length > MAX_ERRORS ? all.slice(0, MAX_ERRORS) : all;
  c.evented = true;
  events.emit({
    type: 'input_validation_fail',
    level: 'WARN',
    description: 'request refused: it does not match the API description',
    args: [operation.label],
    requestId: c.requestId,
    clientIp: c.clientIp,
    route: c.route.name,
    ...(c.consumer === undefined ? {} : { actor: c.consumer.id }),
    data: { operation: operation.label, count: all.length, pointers: errors.map((e) => e.pointer).join(' ') },
  });
  const undeclared = errors.filter((e) => e.detail === 'is not a declared property' || e.detail === 'is read-only').map((e) => e.pointer.slice(e.pointer.lastIndexOf('/') + 1));
  throw new RampartError('RMP_VALIDATION_FAILED', {
    detail: undeclared.length > 0 ? `The request does not match the API description; properties not accepted: ${undeclared.join(', ')}.` : 'The request does not match the API description.',
    extensions: all.length > errors.length ? { errors, errorsOmitted: all.length - errors.length } : { errors },
  });
}
