import type { IncomingHttpHeaders } from 'node:http';
import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) at the gateway (`server.tracing`).
 *
 * The gateway is a span of the trace: the upstream gets a `traceparent` whose parent-id is the
 * gateway's own span id. A valid incoming `traceparent` (version `00`, lowercase hex, trace-id and
 * parent-id not all zeros) keeps its trace-id and its sampled flag; anything else is replaced by
 * a fresh trace (never forwarded as sent). A fresh trace is marked sampled (`01`): the gateway
 * records every request (its access line carries the trace id), and an upstream whose sampler
 * follows its parent (OpenTelemetry's default) keeps recording what it recorded without the
 * gateway in front. `tracestate` goes along only with a valid `traceparent`, and only when it is
 * well-formed and at most 512 bytes; otherwise it is dropped.
 */
export interface Trace {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** The gateway's span id (16 hex digits): the parent-id the upstream sees. */
  readonly spanId: string;
  /** The `traceparent` sent upstream. */
  readonly traceparent: string;
  /** The client's `tracestate`, when it goes along. */
  readonly tracestate: string | undefined;
}

/** Random bytes are drawn from a pool refilled 4 KiB at a time (one system call per ~170 traces), each byte used once. */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

function randomHex(bytes: number): string {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const TRACESTATE_MAX = 512;
const TRACESTATE_MEMBERS_MAX = 32;
/** Optional white space around list members (RFC 9110 OWS: spaces and tabs only). */
const OWS = /^[ \t]+|[ \t]+$/g;
/** key=value: a simple or multi-tenant (`tenant@system`) key; a value of printable ASCII without `,` or `=`, not ending in a space. */
const TRACESTATE_MEMBER = /^(?:[a-z0-9][_0-9a-z*/-]{0,255}|[a-z0-9][_0-9a-z*/-]{0,240}@[a-z][_0-9a-z*/-]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

function newSpanId(): string {
  let id = randomHex(8);
  while (id === ZERO_SPAN_ID) id = randomHex(8);
  return id;
}

function newTraceId(): string {
  let id = randomHex(16);
  while (id === ZERO_TRACE_ID) id = randomHex(16);
  return id;
}

/** The trace of a request, from its headers: the client's trace continued, or a new one. */
export function traceContext(headers: IncomingHttpHeaders): Trace {
  const incoming = headers.traceparent;
  const spanId = newSpanId();
  // Several traceparent headers arrive joined by ", ", which is not 55 characters: replaced.
  if (typeof incoming === 'string' && incoming.length === 55 && TRACEPARENT.test(incoming)) {
    const traceId = incoming.slice(3, 35);
    if (traceId !== ZERO_TRACE_ID && incoming.slice(36, 52) !== ZERO_SPAN_ID) {
      // Only the sampled bit is kept: the other flags describe the caller's span, not ours.
      const flags = (parseInt(incoming.slice(53), 16) & 1) === 1 ? '01' : '00';
      return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${flags}`, tracestate: validTracestate(headers.tracestate) };
    }
  }
  const traceId = newTraceId();
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01`, tracestate: undefined };
}

/**
 * The header as sent when it is well-formed: at most 512 bytes and 32 members, each a valid
 * `key=value`, no key twice (several headers arrive joined by ", ", as the spec allows). Else undefined.
 */
export function validTracestate(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string' || value.length > TRACESTATE_MAX) return undefined;
  let keys: string[] | undefined;
  let first: string | undefined;
  let members = 0;
  for (let start = 0; start <= value.length; ) {
    let end = value.indexOf(',', start);
    if (end === -1) end = value.length;
    let member = value.slice(start, end);
    start = end + 1;
    if (member.includes(' ') || member.includes('\t')) member = member.replace(OWS, '');
    if (member === '') continue; // empty list members are allowed
    if (++members > TRACESTATE_MEMBERS_MAX || !TRACESTATE_MEMBER.test(member)) return undefined;
    const key = member.slice(0, member.indexOf('='));
    if (first === undefined) first = key;
    else if (key === first || (keys ??= []).includes(key)) return undefined;
    else keys.push(key);
  }
  return members === 0 ? undefined : value;
}

/** Puts the trace on the upstream request's headers (replacing whatever the client sent). */
export function setTraceHeaders(headers: Record<string, string | string[]>, trace: Trace): void {
  headers.traceparent = trace.traceparent;
  if (trace.tracestate !== undefined) headers.tracestate = trace.tracestate;
  else if (headers.tracestate !== undefined) delete headers.tracestate;
}
