import { evidenceOf } from './evidence.js';
import type { ScanResponse } from './http.js';
import type { Confidence, Endpoint, Finding, OwaspCategory, Severity } from './types.js';

export interface FindingFields {
  id: string;
  title: string;
  severity: Severity;
  confidence: Confidence;
  owasp: OwaspCategory;
  detail: string;
  remediation: string;
}

/**
 * A finding shown by one exchange: location and evidence come from the response (its request,
 * credentials masked); with the endpoint, the documented operation it was found on.
 */
export function findingFrom(check: string, res: ScanResponse, fields: FindingFields, endpoint?: Endpoint): Finding {
  const url = new URL(res.request.url);
  return {
    check,
    ...fields,
    location: { method: res.request.method, url: url.href, host: url.host },
    evidence: evidenceOf(res),
    ...(endpoint?.from === 'openapi' ? { operation: { template: endpoint.template, source: endpoint.source } } : {}),
  };
}

/** One finding per key (host and kind, say): the first one seen is kept. */
export function firstPerKey(findings: Iterable<Finding>, key: (f: Finding) => string = (f) => `${f.location.host} ${f.id}`): Finding[] {
  const byKey = new Map<string, Finding>();
  for (const f of findings) if (!byKey.has(key(f))) byKey.set(key(f), f);
  return [...byKey.values()];
}
