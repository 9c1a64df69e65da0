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
}

/** An operation the scan knows about (from the crawl; later from an OpenAPI document). */
export interface Endpoint {
  method: string;
  url: URL;
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

export interface ScanContext {
  target: URL;
  options: ScanOptions;
  http: ScanHttpClient;
  logger: ScanLogger;
  endpoints: readonly Endpoint[];
  /** Every response seen while discovering endpoints, whatever its status (checks may judge them without asking again). */
  observed: readonly ScanResponse[];
}

export interface Check {
  id: string;
  title: string;
  owasp: OwaspCategory;
  description: string;
  run(ctx: ScanContext): Promise<Finding[]>;
}
