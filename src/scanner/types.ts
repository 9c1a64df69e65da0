import type { ScanHttpClient, ScanResponse } from './http.js';

/** Ordered from least to most severe; `--fail-on` and the report order use this order. */
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const CONFIDENCES = ['low', 'medium', 'high'] as const;
export type Confidence = (typeof CONFIDENCES)[number];

/** OWASP API Security Top 10, 2023 edition: category → title. */
export const OWASP_API_2023 = {
  'API1:2023': 'Broken Object Level Authorization',
  'API2:2023': 'Broken Authentication',
  'API3:2023': 'Broken Object Property Level Authorization',
  'API4:2023': 'Unrestricted Resource Consumption',
  'API5:2023': 'Broken Function Level Authorization',
  'API6:2023': 'Unrestricted Access to Sensitive Business Flows',
  'API7:2023': 'Server Side Request Forgery',
  'API8:2023': 'Security Misconfiguration',
  'API9:2023': 'Improper Inventory Management',
  'API10:2023': 'Unsafe Consumption of APIs',
} as const;
export type OwaspCategory = keyof typeof OWASP_API_2023;

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export function isSeverity(value: string): value is Severity {
  return (SEVERITIES as readonly string[]).includes(value);
}

export interface Finding {
  /** The check that produced it (a `Check.id`). */
  check: string;
  /** What was found, stable across runs: `<check>.<kind>`, e.g. `cors.null-origin`. */
  id: string;
  title: string;
  severity: Severity;
  confidence: Confidence;
  owasp: OwaspCategory;
  location: { method: string; url: string; host: string };
  /** Bounded excerpts of one exchange that shows the problem; credentials masked. */
  evidence: { request: string; response: string };
  /** What was seen, in a sentence or two (e.g. the list of missing headers). */
  detail: string;
  remediation: string;
  /** The documented operation it was found on (path template; where the OpenAPI document declares it). */
  operation?: { template: string; source?: SourceLocation | undefined } | undefined;
}

/** A parameter of an operation, as far as a black-box test needs it. */
export interface EndpointParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  /** The (resolved) schema, when the document gives one. */
  schema?: Record<string, unknown> | undefined;
  /** The value the scan sends by default: an example, the default, the first enum value or one made from the type. */
  value: string;
}

/** An operation the scan knows about: from the OpenAPI document, or found by the crawl (GET only). */
export interface Endpoint {
  method: string;
  /** A concrete URL to send it to: path parameters filled with `value`s, required query parameters added. */
  url: URL;
  /** The path template (`/notes/{id}`), or the concrete path for a crawled endpoint. */
  template: string;
  /** Where it came from. */
  from: 'openapi' | 'crawl';
  operationId?: string | undefined;
  summary?: string | undefined;
  tags?: readonly string[] | undefined;
  /**
   * What the document says about credentials: `true` when every security alternative needs some
   * (no `{}` alternative), `false` when it says none are needed, undefined when it says nothing or
   * there is no document.
   */
  requiresAuth?: boolean | undefined;
  /** Scopes named by the operation's security requirements (every alternative, deduplicated). */
  scopes?: readonly string[] | undefined;
  parameters: readonly EndpointParameter[];
  /** The JSON request body's (resolved) schema and media type, when the document declares one. */
  requestBody?: { mediaType: string; required: boolean; schema?: Record<string, unknown> | undefined } | undefined;
  /** The (resolved) schema of the first 2XX JSON answer, when declared. */
  responseSchema?: Record<string, unknown> | undefined;
  /** Where the operation is written in the OpenAPI document (SARIF physicalLocation). */
  source?: SourceLocation | undefined;
}

export interface SourceLocation {
  /** As given on the command line (a path or a URL). */
  uri: string;
  line: number;
  column: number;
}

/** Credentials the scan sends as one caller (`--auth`, `--login`); `b` is a second, different user (`--auth-b`). */
export interface Identity {
  label: 'A' | 'B';
  /** Headers that authenticate this caller (`Authorization: Bearer …`, `X-API-Key: …`, `Cookie: …`). */
  headers: Record<string, string>;
  /** The bearer token, when the credentials are one (the JWT checks read and alter it). */
  token?: string | undefined;
  /** How it was obtained: the login exchange (evidence for the logout and enumeration checks). */
  login?: { path: string; user: string; userField: string } | undefined;
}

export interface ScanOptions {
  /** Only requests that cannot change state or lock accounts (default true). */
  safe: boolean;
  /** Opt in to writes and lockout-triggering bursts (`--destructive`). */
  destructive: boolean;
}

export interface ScanLogger {
  debug(message: string): void;
  warn(message: string): void;
}

/** The login exchange of `--login PATH --user U --password P`, for checks that log in again (logout, enumeration, rate limit). */
export interface LoginSettings {
  /** Absolute URL of the login operation. */
  url: URL;
  user: string;
  password: string;
  /** The JSON property that carries the user name (`email`, `username`…). */
  userField: string;
  /** And the second identity's, when `--user-b` is given. */
  userB?: string | undefined;
  passwordB?: string | undefined;
}

export interface ScanContext {
  target: URL;
  options: ScanOptions;
  http: ScanHttpClient;
  logger: ScanLogger;
  endpoints: readonly Endpoint[];
  /** Every response seen while discovering endpoints, whatever its status (checks may judge them without asking again). */
  observed: readonly ScanResponse[];
  /** The OpenAPI document, when `--openapi` was given (its operations are `endpoints`). */
  document?: { uri: string; version: '3.0' | '3.1'; securitySchemes: Readonly<Record<string, unknown>> } | undefined;
  /** Caller A (`--auth`/`--login`) and B (`--auth-b`/`--user-b`); checks that need them say so when they are missing. */
  identities: { a?: Identity | undefined; b?: Identity | undefined };
  login?: LoginSettings | undefined;
  /** `--http-url`: where plain HTTP of the same API listens (the transport check asks it to redirect to HTTPS). */
  httpUrl?: URL | undefined;
  /** Checks that skipped because an input was missing (no identity, no document…), with the reason; reported in the stats. */
  skip(check: string, reason: string): void;
}

export interface Check {
  id: string;
  title: string;
  owasp: OwaspCategory;
  description: string;
  /** Sends writes or lockout-triggering bursts: only runs with `--destructive` (or does only its safe part without). */
  destructive?: boolean;
  run(ctx: ScanContext): Promise<Finding[]>;
}
