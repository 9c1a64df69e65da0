import { Agent, request } from 'undici';
import { maskUrl } from './evidence.js';
import type { ScanLogger } from './types.js';

export interface HttpClientOptions {
  /** Requests per second, at most (`--rate`). */
  rate: number;
  /** Requests in total, at most: the scan's budget. */
  budget: number;
  /** Per request, headers and body together (`--timeout`). */
  timeoutMs: number;
  /** Response bodies are read up to this many bytes; the rest is dropped. */
  maxBodyBytes: number;
  /** PEM certificate(s) to trust (`--ca`). */
  ca?: string | undefined;
  /** Skip certificate verification (`--insecure`). */
  insecure: boolean;
  logger: ScanLogger;
  /** Each request is logged at debug level when true (`--verbose`). */
  verbose: boolean;
}

export interface ScanRequest {
  method?: string;
  url: URL | string;
  headers?: Record<string, string>;
  body?: string;
  /** Follow redirects to the same scheme, host and port (at most 5). Redirects elsewhere are never followed. */
  followSameHostRedirects?: boolean;
}

export interface ScanResponse {
  request: { method: string; url: string; headers: Record<string, string>; body?: string | undefined };
  status: number;
  /** Lower-case names; repeated headers as arrays (as undici gives them). */
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The body was longer than `maxBodyBytes`. */
  truncated: boolean;
  durationMs: number;
}

export interface ScanHttpClient {
  send(req: ScanRequest): Promise<ScanResponse>;
  /**
   * Takes a slot of the rate and one of the budget for a probe that is not an HTTP request (a TLS
   * handshake, a raw socket): every connection the scan opens is bounded the same way.
   */
  acquire(what: string): Promise<void>;
  /** Every answer received so far, in order (checks that judge answers read what the others got). */
  readonly history: readonly ScanResponse[];
  /** Requests sent (or started) so far. */
  readonly sent: number;
  readonly budget: number;
  close(): Promise<void>;
}

/** Thrown instead of sending once the budget is spent; the runner stops the check that hit it. */
export class BudgetExhaustedError extends Error {
  constructor(budget: number) {
    super(`the request budget (${budget}) is spent`);
    this.name = 'BudgetExhaustedError';
  }
}

export class ScanRequestError extends Error {
  constructor(
    message: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ScanRequestError';
  }
}

/** Only http(s) URLs with a host are scanned; anything else is refused here, before any socket opens. */
export function parseTargetUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ScanRequestError(`'${text}' is not a URL`, text);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ScanRequestError(`'${text}' is not an http:// or https:// URL`, text);
  if (url.hostname === '') throw new ScanRequestError(`'${text}' has no host`, text);
  if (url.username !== '' || url.password !== '') throw new ScanRequestError(`'${text}' has credentials in it; pass them with --auth (not yet) instead`, text);
  return url;
}

export function createHttpClient(options: HttpClientOptions): ScanHttpClient {
  if (!(options.rate > 0) || !(options.budget >= 0) || !(options.timeoutMs > 0)) throw new RangeError('rate and timeout must be positive, budget not negative');
  const agent = new Agent({
    connect: { ca: options.ca, rejectUnauthorized: !options.insecure },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connections: 4,
  });
  const interval = 1000 / options.rate;
  let sent = 0;
  // The next free send slot: slots are handed out synchronously, so concurrent callers queue up
  // behind each other and the rate holds whatever the checks do in parallel.
  let nextSlot = 0;

  const history: ScanResponse[] = [];

  /** Counts against the budget and waits for the next rate slot. */
  async function slot(): Promise<void> {
    if (sent >= options.budget) throw new BudgetExhaustedError(options.budget);
    sent++;
    const now = Date.now();
    const at = Math.max(now, nextSlot);
    nextSlot = at + interval;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }

  async function sendOnce(method: string, url: URL, headers: Record<string, string>, body: string | undefined): Promise<ScanResponse> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ScanRequestError(`refusing a non-http(s) URL: ${url.href}`, url.href);
    await slot();
    const started = performance.now();
    if (options.verbose) options.logger.debug(`→ ${method} ${maskUrl(url)}`);
    try {
      const res = await request(url, { dispatcher: agent, method: method as 'GET', headers, body, signal: AbortSignal.timeout(options.timeoutMs) });
      const { text, truncated } = await readCapped(res.body, options.maxBodyBytes);
      const durationMs = Math.round(performance.now() - started);
      if (options.verbose) options.logger.debug(`← ${res.statusCode} ${method} ${maskUrl(url)} (${durationMs} ms${truncated ? ', body truncated' : ''})`);
      const answer: ScanResponse = { request: { method, url: url.href, headers, body }, status: res.statusCode, headers: res.headers, body: text, truncated, durationMs };
      history.push(answer);
      return answer;
    } catch (error) {
      const reason = (error as { code?: string }).code ?? (error as Error).name;
      if (options.verbose) options.logger.debug(`✗ ${method} ${maskUrl(url)}: ${reason}`);
      throw new ScanRequestError(`${method} ${maskUrl(url)} failed: ${(error as Error).message} (${reason})`, url.href, { cause: error });
    }
  }

  return {
    get sent() {
      return sent;
    },
    history,
    async acquire(what) {
      await slot();
      if (options.verbose) options.logger.debug(`→ ${what}`);
    },
    budget: options.budget,
    async send(req) {
      const method = req.method ?? 'GET';
      let url = typeof req.url === 'string' ? new URL(req.url) : req.url;
      const headers = { 'user-agent': 'rampart-scan', ...req.headers };
      let res = await sendOnce(method, url, headers, req.body);
      for (let hops = 0; req.followSameHostRedirects === true && hops < 5 && res.status >= 300 && res.status < 400; hops++) {
        const location = firstHeader(res.headers, 'location');
        if (location === undefined) break;
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          break; // a Location that is no URL: the answer is what it is
        }
        if (next.origin !== url.origin) break; // never to another host (or scheme, or port)
        url = next;
        res = await sendOnce(method === 'HEAD' ? 'HEAD' : 'GET', url, headers, undefined);
      }
      return res;
    },
    close: () => agent.close(),
  };
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, cap: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size + chunk.length > cap) {
      chunks.push(chunk.subarray(0, cap - size));
      body.destroy();
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

export function firstHeader(headers: ScanResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
