import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { escapePointer } from '../gateway/json-text.js';
import type { TSchema, Static } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { parseJsonBody, readBody as readRequestBody } from '../gateway/body.js';
import { RampartError } from '../errors/problem.js';
import type { RequestContext } from '../gateway/context.js';

/** Bodies of the identity endpoints are small: credentials and a few fields. */
const MAX_BODY = 16 * 1024;

const ajv = new Ajv({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

/**
 * Reads and validates a JSON body: `application/json` only (415), at most 16 KiB (413), parsed
 * without prototype keys, and checked against a closed schema. Any field the schema does not
 * declare (unknown or read-only: mass assignment) is refused by name; values are never echoed.
 */
export async function readBody<S extends TSchema>(ctx: RequestContext, schema: S): Promise<Static<S>> {
  const type = ctx.request.raw.headers['content-type'];
  if (type === undefined || !/^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(type.trim())) {
    throw new RampartError('RMP_UNSUPPORTED_MEDIA_TYPE', { detail: 'Send the body as application/json.' });
  }
  return check(schema, parseJsonBody(await readRequestBody(ctx.requestBody ?? ctx.request.raw, MAX_BODY)), '');
}

/** Validates a value (a body, or the query as an object) against a closed schema. */
export function check<S extends TSchema>(schema: S, value: unknown, base: string): Static<S> {
  let fn = compiled.get(schema);
  if (fn === undefined) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  if (!fn(value)) throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: describe(fn.errors ?? [], base) } });
  return value as Static<S>;
}

function describe(errors: readonly ErrorObject[], base: string): { pointer: string; detail: string }[] {
  const out: { pointer: string; detail: string }[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    let item: { pointer: string; detail: string };
    if (e.keyword === 'additionalProperties') {
      const name = String((e.params as { additionalProperty: string }).additionalProperty);
      item = { pointer: `${base}${e.instancePath}/${escapePointer(name)}`, detail: 'is not accepted here (unknown or read-only field)' };
    } else if (e.keyword === 'required') {
      item = { pointer: `${base}${e.instancePath}/${escapePointer(String((e.params as { missingProperty: string }).missingProperty))}`, detail: 'is required' };
    } else {
      // ajv's messages describe the rule ("must be string", "must NOT have more than 256 characters"), never the value.
      item = { pointer: `${base}${e.instancePath}` || '/', detail: e.message ?? 'is not valid' };
    }
    const key = `${item.pointer} ${item.detail}`;
    if (!seen.has(key)) out.push(item);
    seen.add(key);
  }
  return out;
}

/** A JSON answer that no cache keeps (every identity answer concerns credentials or accounts). */
export function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  reply.code(status).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').header('pragma', 'no-cache');
  return reply.send(body === undefined ? '' : JSON.stringify(body));
}

/** The query string as an object of single values (a repeated name is refused). */
export function queryObject(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (query.length <= 1) return out;
  for (const [key, value] of new URLSearchParams(query.slice(1))) {
    if (Object.hasOwn(out, key)) throw new RampartError('RMP_VALIDATION_FAILED', { extensions: { errors: [{ pointer: `/query/${escapePointer(key)}`, detail: 'is given more than once' }] } });
    out[key] = value;
  }
  return out;
}
