import { readFileSync } from 'node:fs';
import { ConfigError, formatIssue } from '../config/errors.js';
import { isObject, parseOpenApi, type Json, type OpenApiDocument, type OperationInfo } from '../openapi/document.js';
import { firstHeader, type ScanHttpClient } from './http.js';
import type { Endpoint, EndpointParameter } from './types.js';

/**
 * Endpoints from an OpenAPI 3.0 or 3.1 document (`--openapi FILE|URL`): every operation with its
 * method, a concrete URL (path parameters filled in), what it says about credentials, its JSON
 * request body and answer schemas, and where it is written (for SARIF). The document is read by
 * the gateway's own reader (src/openapi/document.ts), so a document the gateway refuses the scanner
 * refuses too, with the same located message; zero operations is an error.
 */

/** The document cannot be used: exit code 2, with the reader's located message. */
export class DocumentError extends Error {
  override name = 'DocumentError';
}

export interface LoadedDocument {
  uri: string;
  doc: OpenApiDocument;
  endpoints: Endpoint[];
}

/** Reads `spec` (a file, or an http(s) URL fetched through the scan's client, so --ca and the budget apply). */
export async function loadDocument(spec: string, target: URL, http: ScanHttpClient): Promise<LoadedDocument> {
  let text: string;
  if (/^https?:\/\//i.test(spec)) {
    const res = await http.send({ url: spec, followSameHostRedirects: true, headers: { accept: 'application/json, application/yaml;q=0.9, */*;q=0.1' } });
    if (res.status !== 200) throw new DocumentError(`--openapi ${spec}: answered ${res.status}`);
    if (res.truncated) throw new DocumentError(`--openapi ${spec}: the document is larger than the scan reads of one answer`);
    text = res.body;
    const type = firstHeader(res.headers, 'content-type') ?? '';
    if (/html/i.test(type)) throw new DocumentError(`--openapi ${spec}: answered an HTML page (${type}), not an OpenAPI document`);
  } else {
    try {
      text = readFileSync(spec, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new DocumentError(`--openapi ${spec}: cannot read it (${code === 'ENOENT' ? 'no such file' : String(code ?? error)})`);
    }
  }
  let doc: OpenApiDocument;
  try {
    doc = parseOpenApi(text, spec);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new DocumentError(error.issues.map(formatIssue).join('\n'));
  }
  return { uri: spec, doc, endpoints: endpointsOf(doc, target, spec) };
}

/** The URL path the document's paths hang from: the target's path, plus the document's server path unless the target already ends with it. */
export function basePath(target: URL, serverPath: string): string {
  const own = target.pathname.replace(/\/+$/, '');
  return own.endsWith(serverPath) ? own : `${own}${serverPath}`;
}

export function endpointsOf(doc: OpenApiDocument, target: URL, uri: string): Endpoint[] {
  const base = basePath(target, doc.serverPath);
  return doc.operations.map((op) => endpointOf(doc, op, target, base, uri));
}

function endpointOf(doc: OpenApiDocument, op: OperationInfo, target: URL, base: string, uri: string): Endpoint {
  const parameters: EndpointParameter[] = op.parameters.map((p) => {
    const schema = deref(doc, p.schema?.schema);
    return { name: p.name, in: p.in, required: p.required, schema, value: sampleValue(p.name, schema) };
  });
  let path = op.template;
  for (const p of parameters.filter((x) => x.in === 'path')) path = path.replaceAll(`{${p.name}}`, encodeURIComponent(p.value));
  const url = new URL(target.origin);
  url.pathname = `${base}${path}`;
  for (const p of parameters.filter((x) => x.in === 'query' && x.required)) url.searchParams.append(p.name, p.value);

  const json = op.requestBody?.content.find((m) => m.range === 'application/json' || m.range.endsWith('+json')) ?? op.requestBody?.content.find((m) => m.range.includes('json'));
  const media = json ?? op.requestBody?.content[0];
  const ok = op.responses.find((r) => /^2/.test(r.status) && r.content !== undefined);
  const okJson = ok?.content?.find((m) => m.range.includes('json'));
  const alternatives = op.securityDeclared ? op.security : undefined;
  const issue = doc.issue(op.path, '', true);
  return {
    method: op.method,
    url,
    template: op.template,
    from: 'openapi',
    operationId: op.operationId,
    summary: op.summary,
    tags: tagsOf(doc, op),
    requiresAuth: alternatives === undefined ? undefined : alternatives.length > 0 && alternatives.every((a) => Object.keys(a).length > 0),
    scopes: alternatives === undefined ? undefined : [...new Set(alternatives.flatMap((a) => Object.values(a).flat()))],
    parameters,
    requestBody: media === undefined ? undefined : { mediaType: media.range, required: op.requestBody!.required, schema: deref(doc, media.schema?.schema) },
    responseSchema: deref(doc, okJson?.schema?.schema),
    source: { uri, line: issue.line, column: issue.column },
  };
}

function tagsOf(doc: OpenApiDocument, op: OperationInfo): string[] | undefined {
  let node: unknown = doc.root;
  for (const part of op.path) node = isObject(node as Json) ? (node as Record<string, unknown>)[part as string] : undefined;
  const tags = isObject(node as Json) ? (node as Record<string, unknown>).tags : undefined;
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : undefined;
}

/**
 * A copy of the schema with local `$ref`s inlined, a few levels deep (checks read properties,
 * `readOnly`, formats; they do not validate). A reference met again on the way down stays a
 * `$ref`, so recursive schemas end.
 */
export function deref(doc: OpenApiDocument, schema: Json | undefined, depth = 6, seen: ReadonlySet<string> = new Set()): Record<string, unknown> | undefined {
  if (!isObject(schema ?? null)) return undefined;
  const node = schema as Record<string, Json>;
  if (typeof node.$ref === 'string') {
    const ref = node.$ref;
    if (seen.has(ref) || depth <= 0) return { $ref: ref };
    return deref(doc, doc.lookup(ref)?.schema, depth - 1, new Set([...seen, ref]));
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties' && isObject(value)) out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deref(doc, v, depth - 1, seen) ?? v]));
    else if ((key === 'items' || key === 'additionalProperties') && isObject(value)) out[key] = deref(doc, value, depth - 1, seen);
    else if ((key === 'allOf' || key === 'anyOf' || key === 'oneOf') && Array.isArray(value)) out[key] = value.map((v) => deref(doc, v, depth - 1, seen) ?? v);
    else out[key] = value;
  }
  return out;
}

/** The properties of an object schema, `allOf` parts merged (what a client may send or read). */
export function propertiesOf(schema: Record<string, unknown> | undefined): Record<string, Record<string, unknown>> {
  if (schema === undefined) return {};
  const own = isObject((schema.properties ?? null) as Json) ? (schema.properties as Record<string, Record<string, unknown>>) : {};
  const parts = Array.isArray(schema.allOf) ? (schema.allOf as Record<string, unknown>[]).map(propertiesOf) : [];
  return Object.assign({}, ...parts, own) as Record<string, Record<string, unknown>>;
}

/** A value for a parameter or property: its example, default or first enum value, else one made from its type and format. */
export function sampleValue(name: string, schema: Record<string, unknown> | undefined): string {
  const given = schema?.example ?? (Array.isArray(schema?.examples) ? (schema.examples as unknown[])[0] : undefined) ?? schema?.default ?? (Array.isArray(schema?.enum) ? (schema.enum as unknown[])[0] : undefined);
  if (given !== undefined && given !== null && typeof given !== 'object') return String(given);
  const type = Array.isArray(schema?.type) ? (schema.type as string[]).find((t) => t !== 'null') : (schema?.type as string | undefined);
  const format = schema?.format as string | undefined;
  if (type === 'integer' || type === 'number') return String(Math.max(1, Number(schema?.minimum ?? 1)));
  if (type === 'boolean') return 'true';
  switch (format) {
    case 'uuid':
      return '00000000-0000-4000-8000-000000000001';
    case 'date':
      return '2026-01-01';
    case 'date-time':
      return '2026-01-01T00:00:00Z';
    case 'email':
      return 'scan@example.com';
    case 'uri':
    case 'url':
      return 'https://example.com/';
  }
  return /(^|_)id$|Id$/.test(name) ? '1' : 'rampart-scan';
}
