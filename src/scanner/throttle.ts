import { firstHeader, type ScanResponse } from './http.js';

/**
 * An answer that says "not now" rather than anything about the request: 429, 503, or any answer
 * with Retry-After. It decides nothing — not a refusal, not an acceptance, not a missing header —
 * everywhere but in the rate-limit check: a limiter or a busy server must never make a secure API
 * look vulnerable.
 */
export function isThrottled(res: Pick<ScanResponse, 'status' | 'headers'>): boolean {
  return res.status === 429 || res.status === 503 || firstHeader(res.headers, 'retry-after') !== undefined;
}
