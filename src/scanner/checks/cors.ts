import { findingFrom, firstPerKey } from '../finding.js';
import { firstHeader, type ScanResponse } from '../http.js';
import type { Check, Confidence, Endpoint, Finding, ScanContext, Severity } from '../types.js';

/**
 * CORS: sends GET requests with hostile `Origin` headers and reads Access-Control-Allow-Origin
 * and -Credentials. An origin the server allows *with credentials* lets any page that origin
 * serves read the victim's authenticated answers: that is the high-severity case. Without
 * credentials a permissive origin only exposes what is public anyway: low.
 */

/** An origin no real deployment lists. */
export const EVIL_ORIGIN = 'https://rampart-scan.evil.example';
/** Endpoints probed per scan: CORS is usually configured once per host, a few samples find it. */
const MAX_ENDPOINTS = 3;

interface Probe {
  endpoint: Endpoint;
  origin: string;
  res: ScanResponse;
  allowOrigin: string | undefined;
  credentials: boolean;
}

async function probe(ctx: ScanContext, endpoint: Endpoint, origin: string): Promise<Probe> {
  const res = await ctx.http.send({ method: endpoint.method, url: endpoint.url, headers: { origin } });
  return {
    endpoint,
    origin,
    res,
    allowOrigin: firstHeader(res.headers, 'access-control-allow-origin')?.trim(),
    credentials: firstHeader(res.headers, 'access-control-allow-credentials')?.trim().toLowerCase() === 'true',
  };
}

function finding(p: Probe, id: string, title: string, severity: Severity, confidence: Confidence, detail: string, remediation: string): Finding {
  return findingFrom('cors', p.res, { id, title, severity, confidence, owasp: 'API8:2023', detail, remediation }, p.endpoint);
}

const LIST_ORIGINS = 'Allow only the origins listed in the configuration, compared exactly (scheme, host and port); never reflect the request\'s Origin.';
const creds = (p: Probe) => (p.credentials ? ' with Access-Control-Allow-Credentials: true' : '');

async function probeEndpoint(ctx: ScanContext, endpoint: Endpoint): Promise<Finding[]> {
  const found: Finding[] = [];
  const evil = await probe(ctx, endpoint, EVIL_ORIGIN);
  if (evil.allowOrigin === '*' && evil.credentials) {
    found.push(
      finding(evil, 'cors.wildcard-credentials', 'CORS allows any origin and credentials', 'medium', 'medium',
        'Access-Control-Allow-Origin: * together with Access-Control-Allow-Credentials: true. Browsers refuse this pair today, but it shows credentialed cross-origin access is meant for everyone, and it turns into reflection as soon as someone "fixes" the browser error.',
        `${LIST_ORIGINS} Send credentials only to those origins.`),
    );
  } else if (evil.allowOrigin === '*') {
    found.push(finding(evil, 'cors.wildcard', 'CORS allows any origin (without credentials)', 'info', 'high',
      'Access-Control-Allow-Origin: * without credentials: any page can read public answers. Fine for a public API, wrong for anything that authenticates by IP or network position.',
      LIST_ORIGINS));
  } else if (evil.allowOrigin === EVIL_ORIGIN) {
    found.push(finding(evil, 'cors.reflected-origin', `CORS reflects an arbitrary origin${creds(evil)}`, evil.credentials ? 'high' : 'low', 'high',
      `Origin: ${EVIL_ORIGIN} is answered with Access-Control-Allow-Origin: ${EVIL_ORIGIN}${creds(evil)}: ${evil.credentials ? 'any web page can read authenticated answers in its visitors\' name' : 'any page can read the answers'}.`,
      LIST_ORIGINS));
  }

  // A server that reflects every origin reflects `null` too: the finding above covers it.
  if (evil.allowOrigin === EVIL_ORIGIN) return found;
  const nul = await probe(ctx, endpoint, 'null');
  if (nul.allowOrigin === 'null') {
    found.push(finding(nul, 'cors.null-origin', `CORS allows the null origin${creds(nul)}`, nul.credentials ? 'high' : 'low', 'high',
      `Origin: null is answered with Access-Control-Allow-Origin: null${creds(nul)}. Sandboxed iframes, data: URLs and local files send null, so any attacker page can.`,
      `${LIST_ORIGINS} Never list "null".`));
  }

  // Origin checks done with substring, prefix or suffix matching (not worth probing behind a wildcard).
  if (evil.allowOrigin !== '*') {
    const host = endpoint.url.hostname;
    for (const origin of [`https://${host}.evil.example`, `https://evil${host}`]) {
      const p = await probe(ctx, endpoint, origin);
      if (p.allowOrigin === origin) {
        found.push(finding(p, 'cors.origin-bypass', `CORS origin check can be bypassed (${origin})${creds(p)}`, p.credentials ? 'high' : 'low', 'high',
          `The server allows ${origin}${creds(p)}: it matches origins by substring, prefix or suffix, and anyone can register such a domain.`,
          `${LIST_ORIGINS} Anchored matching of the whole origin, not of a part of the host.`));
        break;
      }
    }
  }
  return found;
}

export const corsCheck: Check = {
  id: 'cors',
  title: 'Cross-origin resource sharing',
  owasp: 'API8:2023',
  description: `Sends Origin: ${EVIL_ORIGIN}, Origin: null and origins built around the target's host (https://<host>.evil.example, https://evil<host>) to up to ${MAX_ENDPOINTS} endpoints and reads Access-Control-Allow-Origin/-Credentials.`,
  async run(ctx) {
    // One finding per host and kind: the first endpoint that shows it. CORS is answered for reads;
    // the probes use GET endpoints only (a hostile Origin on a write would still be a write).
    const found: Finding[] = [];
    for (const endpoint of ctx.endpoints.filter((e) => e.method === 'GET').slice(0, MAX_ENDPOINTS)) found.push(...(await probeEndpoint(ctx, endpoint)));
    return firstPerKey(found);
  },
};
