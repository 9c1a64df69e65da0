import { errorCodes, type ErrorCode } from './codes.js';

export interface RampartErrorOptions {
  /** Human-readable explanation for this occurrence. Must never contain secrets or upstream text. */
  detail?: string;
  /** Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`, …). */
  headers?: Record<string, string>;
  /** Extra members of the problem body (for example `errors` for validation failures). */
  extensions?: Record<string, unknown>;
  /** The underlying error. Logged, never sent. */
  cause?: unknown;
  /** A status other than the table's, for the codes whose doc says so (`RMP_UPSTREAM_CLIENT_ERROR` keeps the upstream's 4xx). */
  status?: number;
}

/** A policy denies by throwing one of these; one handler renders it as problem+json. */
export class RampartError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly extensions: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: RampartErrorOptions = {}) {
    super(options.detail ?? errorCodes[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RampartError';
    this.code = code;
    this.status = options.status ?? errorCodes[code].status;
    this.detail = options.detail;
    this.headers = options.headers;
    this.extensions = options.extensions;
  }
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** Base of the `type` URI: the anchor of the code in the errors reference. */
export const PROBLEM_TYPE_BASE = 'https://rampart.dev/docs/errors#';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: ErrorCode;
  requestId: string;
  [extension: string]: unknown;
}

/** Builds the RFC 9457 body for an error. `instance` is the request path without its query. */
export function toProblem(error: RampartError, requestId: string, path: string | undefined): Problem {
  const entry = errorCodes[error.code];
  const problem: Problem = {
    type: PROBLEM_TYPE_BASE + error.code.toLowerCase(),
    title: entry.title,
    status: error.status,
    code: error.code,
    requestId,
  };
  if (error.detail !== undefined) problem.detail = error.detail;
  if (path !== undefined) problem.instance = path;
  if (error.extensions !== undefined) {
    for (const [key, value] of Object.entries(error.extensions)) {
      if (!(key in problem)) problem[key] = value;
    }
  }
  return problem;
}

/** Wraps anything thrown into a RampartError; unknown errors become RMP_INTERNAL with a generic detail. */
export function asRampartError(error: unknown): RampartError {
  if (error instanceof RampartError) return error;
  return new RampartError('RMP_INTERNAL', { cause: error });
}
