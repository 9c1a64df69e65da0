import { BudgetExhaustedError, firstHeader, type ScanHttpClient, type ScanResponse } from './http.js';
import type { Endpoint, ScanLogger } from './types.js';

/**
 * Endpoint discovery without an OpenAPI document: the base URL (it must answer, whatever its
 * status), a short list of common paths under it, then a bounded breadth-first crawl of the links
 * the answers contain (HTML href/src, `Link` headers, JSON strings that are paths or same-origin
 * URLs). Only GET, only the target's origin and path, at most MAX_PAGES pages and MAX_DEPTH hops.
 * Every answer is kept for the checks that judge answers (headers, sensitive data).
 */

/**
 * Paths tried when no OpenAPI document is given, relative to the base URL's path. Bounded on
 * purpose: this is a sample to judge a host by, not a content-discovery brute force.
 */
export const COMMON_PATHS: readonly string[] = ['health', 'healthz', 'api', 'api/v1', 'openapi.json', 'swagger.json', 'v1'];
export const MAX_PAGES = 30;
export const MAX_DEPTH = 3;
/** Links a crawler must not follow even with GET: badly built APIs change state on them. */
const STATEFUL_LINK = /(^|\/)(log-?out|sign-?out|delete|remove|destroy|revoke)(\/|$)/i;

/** A path that looks like it changes state even on GET (`/logout`, `/users/1/delete`): safe mode never sends it. */
export function looksStateful(path: string): boolean {
  return STATEFUL_LINK.test(path);
}
/** Links taken from one answer, at most. */
const MAX_LINKS_PER_PAGE = 40;

export interface Discovery {
  endpoints: Endpoint[];
  observed: ScanResponse[];
}

/** The target does not answer at all: the scan cannot run (exit 2). */
export class TargetUnreachableError extends Error {
  override name = 'TargetUnreachableError';
}

export function linksOf(res: ScanResponse): string[] {
  const links: string[] = [];
  for (const value of [firstHeader(res.headers, 'link') ?? '']) for (const m of value.matchAll(/<([^>]+)>/g)) links.push(m[1]!);
  const type = (firstHeader(res.headers, 'content-type') ?? '').toLowerCase();
  if (type.includes('html')) {
    for (const m of res.body.matchAll(/\b(?:href|src|action)\s*=\s*["']([^"'#]+)/gi)) links.push(m[1]!);
  } else if (type.includes('json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      parsed = undefined;
    }
    const walk = (node: unknown, depth: number): void => {
      if (links.length >= MAX_LINKS_PER_PAGE * 4 || depth > 8) return;
      if (typeof node === 'string') {
        if (/^\/[\w\-./~%]*$/.test(node) || /^https?:\/\//.test(node)) links.push(node);
      } else if (Array.isArray(node)) for (const v of node) walk(v, depth + 1);
      else if (node !== null && typeof node === 'object') for (const v of Object.values(node)) walk(v, depth + 1);
    };
    walk(parsed, 0);
  }
  return links.slice(0, MAX_LINKS_PER_PAGE);
}

export async function crawl(target: URL, http: ScanHttpClient, logger: ScanLogger): Promise<Discovery> {
  const base = new URL(target.href.endsWith('/') ? target.href : `${target.href}/`);
  const observed: ScanResponse[] = [];
  const endpoints: Endpoint[] = [];
  const seen = new Set<string>();
  const queue: { url: URL; depth: number }[] = [];
  const add = (url: URL, depth: number): void => {
    url.hash = '';
    if (url.origin !== base.origin || !(url.pathname === target.pathname || url.pathname.startsWith(base.pathname))) return;
    if (seen.has(url.href) || looksStateful(url.pathname)) return;
    seen.add(url.href);
    queue.push({ url, depth });
  };
  // The target itself, exactly as given, comes first; then the common paths under it; then links.
  add(new URL(target.href), 0);
  for (const p of COMMON_PATHS) add(new URL(p, base), 1);
  let first = true;
  let pages = 0;
  while (queue.length > 0 && pages < MAX_PAGES) {
    const { url, depth } = queue.shift()!;
    pages++;
    let res: ScanResponse;
    try {
      res = await http.send({ url, followSameHostRedirects: true });
    } catch (error) {
      if (first) throw new TargetUnreachableError(`the target does not answer: ${(error as Error).message}`, { cause: error });
      if (error instanceof BudgetExhaustedError) break; // the checks judge what was seen; the stats say the budget ran out
      logger.warn(`${url.href}: ${(error as Error).message}`);
      continue;
    }
    observed.push(res);
    const found = first || (res.status !== 404 && res.status !== 405);
    first = false;
    if (!found) continue;
    const final = new URL(res.request.url);
    endpoints.push({ method: 'GET', url: final, template: final.pathname, from: 'crawl', parameters: [] });
    if (isOpenApi(res)) logger.warn(`${final.href} is an OpenAPI document: pass --openapi ${final.href} to test every operation it declares`);
    if (depth >= MAX_DEPTH) continue;
    for (const link of linksOf(res)) {
      let next: URL;
      try {
        next = new URL(link, final);
      } catch {
        continue;
      }
      add(next, depth + 1);
    }
  }
  return { endpoints, observed };
}

function isOpenApi(res: ScanResponse): boolean {
  return res.status === 200 && /^\s*\{[\s\S]*"openapi"\s*:\s*"3\./.test(res.body.slice(0, 4096));
}
