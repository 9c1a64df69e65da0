import { randomBytes } from 'node:crypto';
import type { ScanResponse } from '../http.js';
import { propertiesOf } from '../openapi.js';
import type { Check, Endpoint, Finding } from '../types.js';
import { findingAt, Prober } from './inject.js';

/**
 * XML external entities, for operations that take XML: the document says application/xml,
 * text/xml or +xml, or (for an operation documented with a JSON body) a plain XML body is accepted
 * with a 2XX. Three documents, each the same element with one value:
 *
 * 1. plain XML (the baseline);
 * 2. a DOCTYPE with an internal entity whose text is a random marker — is it expanded into the answer?
 * 3. only when it is: an external entity `SYSTEM "file:///etc/passwd"` — does the answer now hold
 *    `root:x:0:0:` (the baseline does not)? If not, `file:///c:/windows/win.ini` (`[fonts]`).
 *
 * Reported only on the file's own content in the answer: a clear marker, not a status code. The
 * files are ones every Unix (or Windows) host has and whose content is recognisable; nothing is
 * written. Bodies are writes: the whole check runs only with --destructive.
 */

/** Operations tried, at most (the XML ones first). */
export const MAX_XML_OPERATIONS = 4;

const FILES: readonly { uri: string; marker: RegExp; what: string }[] = [
  { uri: 'file:///etc/passwd', marker: /root:[x*!]?:0:0:/, what: 'the first line of /etc/passwd' },
  { uri: 'file:///c:/windows/win.ini', marker: /\[(?:fonts|extensions)\]/i, what: 'the sections of win.ini' },
];

const isXml = (type: string): boolean => /^(application|text)\/(.+\+)?xml$/.test(type);

/** The root element and the property the value goes into: the schema's xml name and first string property, else `data`/`value`. */
function shapeOf(endpoint: Endpoint): { root: string; field: string } {
  const schema = endpoint.requestBody?.schema;
  const xmlName = (schema?.xml as { name?: unknown } | undefined)?.name;
  const props = Object.entries(propertiesOf(schema)).find(([, s]) => s.type === undefined || s.type === 'string');
  const name = (n: unknown, fallback: string) => (typeof n === 'string' && /^[A-Za-z_][\w.-]*$/.test(n) ? n : fallback);
  return { root: name(xmlName, 'data'), field: name(props?.[0], 'value') };
}

function document(endpoint: Endpoint, entity: string | undefined, reference: boolean): string {
  const { root, field } = shapeOf(endpoint);
  const doctype = entity === undefined ? '' : `<!DOCTYPE ${root} [${entity}]>`;
  return `<?xml version="1.0" encoding="UTF-8"?>${doctype}<${root}><${field}>${reference ? '&rs;' : 'rampart-scan'}</${field}></${root}>`;
}

export const xxeCheck: Check = {
  id: 'xxe',
  title: 'XML external entities',
  owasp: 'API8:2023',
  destructive: true,
  description: `For up to ${MAX_XML_OPERATIONS} operations that take XML: plain XML, an internal entity with a random marker, then an external entity to file:///etc/passwd (or win.ini); reported when the file's content is in the answer.`,
  async run(ctx) {
    const xml = ctx.endpoints.filter((e) => e.requestBody !== undefined && isXml(e.requestBody.mediaType));
    const json = ctx.endpoints.filter((e) => e.requestBody !== undefined && /json/.test(e.requestBody.mediaType) && ['POST', 'PUT', 'PATCH'].includes(e.method));
    const operations = [...xml, ...json].filter((e) => !/(^|\/)(log-?out|sign-?out|delete|remove|destroy|revoke)(\/|$)/i.test(e.template)).slice(0, MAX_XML_OPERATIONS);
    if (operations.length === 0) {
      ctx.skip(this.id, 'no operation takes a request body');
      return [];
    }
    const prober = new Prober(ctx);
    const found: Finding[] = [];
    for (const endpoint of operations) {
      const declared = isXml(endpoint.requestBody!.mediaType);
      const type = declared ? endpoint.requestBody!.mediaType : 'application/xml';
      const send = (body: string) => prober.send({ method: endpoint.method, url: endpoint.url, headers: { accept: 'application/xml, application/json, */*;q=0.5', ...ctx.identities.a?.headers, 'content-type': type }, body });
      const base = await send(document(endpoint, undefined, false));
      if (base === undefined || (!declared && (base.status < 200 || base.status > 299))) continue; // XML not accepted
      const marker = `rampart-${randomBytes(5).toString('hex')}`;
      const internal = await send(document(endpoint, `<!ENTITY rs "${marker}">`, true));
      if (internal === undefined || !internal.body.includes(marker)) continue; // entities are refused, or the value is not in the answer
      let hit: { res: ScanResponse; file: (typeof FILES)[number]; index: number } | undefined;
      for (const file of FILES) {
        const res = await send(document(endpoint, `<!ENTITY rs SYSTEM "${file.uri}">`, true));
        if (res === undefined) break;
        const m = file.marker.exec(res.body);
        if (m !== null && !file.marker.test(base.body)) {
          hit = { res, file, index: m.index };
          break;
        }
      }
      if (hit === undefined) continue;
      found.push(findingAt(this.id, hit.res, {
        id: 'xxe.external-entity',
        title: `XML external entity read a server file (${hit.file.uri})`,
        severity: 'high',
        confidence: 'high',
        owasp: 'API8:2023',
        detail:
          `${endpoint.method} ${endpoint.template} (${type}${declared ? '' : ', documented as JSON but accepting XML'}) expands entities (an internal one came back as its text), ` +
          `and a DOCTYPE entity SYSTEM "${hit.file.uri}" put ${hit.file.what} ("${hit.res.body.slice(hit.index, hit.index + 16)}…") into the answer: any file the server can read, and URLs it can reach (SSRF), are one request away.`,
        remediation:
          'Disable DTDs (DOCTYPE) in the XML parser, or at least external entities and entity expansion; refuse a DOCTYPE with 400. Accept XML only where it is needed.',
      }, endpoint, { index: hit.index }));
    }
    prober.sayThrottled(this.id);
    return found;
  },
};
