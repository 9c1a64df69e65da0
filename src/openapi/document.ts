import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue, type ConfigPath } from '../config/errors.js';
import { Source } from '../config/load.js';

/**
 * An OpenAPI 3.0 or 3.1 document, read once at config load: YAML or JSON (YAML 1.2 reads both, and
 * keeps positions for errors), its operations listed with their parameters, bodies and responses,
 * every local `$ref` outside schemas followed here. Schemas keep their `$ref`s: ajv resolves them
 * (see schema.ts), so recursive schemas need no expansion.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const OPERATION_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const PARAMETER_LOCATIONS = ['path', 'query', 'header', 'cookie'] as const;
export type ParameterLocation = (typeof PARAMETER_LOCATIONS)[number];

/** A schema in the document, and where it is (for `$ref` resolution and errors). */
export interface SchemaAt {
  readonly schema: Json;
  readonly path: ConfigPath;
}

export interface ParameterInfo {
  readonly name: string;
  readonly in: ParameterLocation;
  readonly required: boolean;
  readonly style: string;
  readonly explode: boolean;
  readonly allowEmptyValue: boolean;
  /** `schema`, or the schema of the single `content` media type (then the value is JSON text). */
  readonly schema: SchemaAt | undefined;
  readonly json: boolean;
  readonly path: ConfigPath;
}

export interface MediaInfo {
  /** Lowercased media range as written (`application/json`, `application/*`, `*\/*`). */
  readonly range: string;
  readonly schema: SchemaAt | undefined;
}

export interface ResponseInfo {
  /** `200`, `2XX` or `default`. */
  readonly status: string;
  /** Undefined when the response declares no content (no body). */
  readonly content: readonly MediaInfo[] | undefined;
}

export interface OperationInfo {
  /** Upper case (`GET`). */
  readonly method: string;
  /** The path template as written (`/pets/{petId}`). */
  readonly template: string;
  readonly operationId: string | undefined;
  readonly parameters: readonly ParameterInfo[];
  readonly requestBody: { readonly required: boolean; readonly content: readonly MediaInfo[] } | undefined;
  readonly responses: readonly ResponseInfo[];
  /** Security requirements (operation level, else document level): scheme name → scopes. */
  readonly security: readonly Readonly<Record<string, readonly string[]>>[];
  /** The document says something about security for this operation (`security: []` says: none). */
  readonly securityDeclared: boolean;
  readonly summary: string | undefined;
  readonly path: ConfigPath;
}

export interface OpenApiDocument {
  readonly file: string;
  readonly version: '3.0' | '3.1';
  readonly root: JsonObject;
  readonly title: string;
  /** Path prefix of the first `servers` entry (`/v1`), '' when none. */
  readonly serverPath: string;
  readonly operations: readonly OperationInfo[];
  readonly securitySchemes: Readonly<Record<string, JsonObject>>;
  /** Looks up a local JSON pointer (`#/components/schemas/Pet`). */
  lookup(ref: string): SchemaAt | undefined;
  /** A located message; with `key`, at the key naming the value (`get:`) rather than the value. */
  issue(path: ConfigPath, message: string, key?: boolean): ConfigIssue;
}

const cache = new Map<string, { text: string; doc: OpenApiDocument }>();

/**
 * Reads a document (relative to `dir`). It is read again at every config load (a reload picks up
 * its changes); unchanged text is not parsed twice. Throws ConfigError.
 */
export function readOpenApi(file: string, dir: string, shownAs?: string): OpenApiDocument {
  const path = resolve(dir, file);
  // Errors name the file as resolved: a relative name means nothing without the config's directory.
  shownAs ??= path;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([{ file: shownAs, line: 0, column: 0, path: '', message: `cannot read the OpenAPI document: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(code ?? error)}` }]);
  }
  const hit = cache.get(path);
  if (hit !== undefined && hit.text === text) return hit.doc;
  const doc = parseOpenApi(text, shownAs);
  cache.set(path, { text, doc });
  return doc;
}

/** Parses and checks a document's text. `file` is only used in messages. */
export function parseOpenApi(text: string, file: string): OpenApiDocument {
  const lines = new LineCounter();
  const yaml = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const source = new Source(yaml, lines, file);
  if (yaml.errors.length > 0) {
    throw new ConfigError(yaml.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return { file, line, column: col, path: '', message: e.message.split('\n')[0]! };
    }));
  }
  let root: unknown;
  try {
    root = yaml.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `the document cannot be expanded: ${(error as Error).message}` }]);
  }
  return new Reader(root, source).read();
}

class Reader {
  readonly issues: ConfigIssue[] = [];
  version: '3.0' | '3.1' = '3.1';

  constructor(
    readonly root: unknown,
    readonly source: Source,
  ) {}

  fail(path: ConfigPath, message: string): undefined {
    this.issues.push(this.source.issue(path, message));
    return undefined;
  }

  lookup(ref: string): SchemaAt | undefined {
    if (!ref.startsWith('#')) return undefined;
    const path: (string | number)[] = [];
    let node: unknown = this.root;
    if (ref !== '#' && !ref.startsWith('#/')) return undefined;
    for (const raw of ref === '#' ? [] : ref.slice(2).split('/')) {
      let part: string;
      try {
        part = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      } catch {
        return undefined;
      }
      if (Array.isArray(node)) {
        const index = Number(part);
        if (!/^(0|[1-9]\d*)$/.test(part) || index >= node.length) return undefined;
        node = node[index];
        path.push(index);
      } else if (isObject(node) && Object.hasOwn(node, part)) {
        node = node[part];
        path.push(part);
      } else return undefined;
    }
    return { schema: node as Json, path };
  }

  /** Follows `$ref`s of a non-schema object (parameter, request body, response, path item). */
  deref(value: unknown, path: ConfigPath, what: string): { value: JsonObject; path: ConfigPath } | undefined {
    const seen = new Set<string>();
    while (isObject(value) && typeof value.$ref === 'string') {
      const ref = value.$ref;
      if (!ref.startsWith('#/')) return this.fail([...path, '$ref'], `only local references (#/…) are supported, not '${ref}'`);
      if (seen.has(ref)) return this.fail([...path, '$ref'], `the reference '${ref}' is circular`);
      seen.add(ref);
      const target = this.lookup(ref);
      if (target === undefined) return this.fail([...path, '$ref'], `the reference '${ref}' points at nothing in this document`);
      value = target.schema;
      path = target.path;
    }
    if (!isObject(value)) return this.fail(path, `expected ${what} (a mapping)`);
    return { value, path };
  }

  read(): OpenApiDocument {
    const root = this.root;
    if (!isObject(root)) {
      this.fail([], 'expected an OpenAPI document (a mapping with `openapi`, `info` and `paths`)');
      throw new ConfigError(this.issues);
    }
    if (typeof root.swagger === 'string') {
      this.fail(['swagger'], 'Swagger 2.0 is not supported: convert the document to OpenAPI 3 (for example with swagger2openapi)');
      throw new ConfigError(this.issues);
    }
    const version = typeof root.openapi === 'string' ? /^3\.([01])\.\d+(-.+)?$/.exec(root.openapi) : null;
    if (version === null) {
      this.fail(['openapi'], `expected \`openapi: 3.0.x\` or \`openapi: 3.1.x\`${root.openapi === undefined ? '' : `, found ${JSON.stringify(root.openapi)}`}`);
      throw new ConfigError(this.issues);
    }
    this.version = version[1] === '0' ? '3.0' : '3.1';
    const info = isObject(root.info) ? root.info : {};
    const title = typeof info.title === 'string' ? info.title : 'API';
    const securitySchemes: Record<string, JsonObject> = {};
    const components = isObject(root.components) ? root.components : {};
    if (isObject(components.securitySchemes)) {
      for (const [name, scheme] of Object.entries(components.securitySchemes)) {
        const found = this.deref(scheme, ['components', 'securitySchemes', name], 'a security scheme');
        if (found !== undefined) securitySchemes[name] = found.value;
      }
    }
    const rootSecurity = this.security(root.security, ['security']);
    const operations: OperationInfo[] = [];
    if (!isObject(root.paths)) {
      this.fail(root.paths === undefined ? [] : ['paths'], 'expected `paths`, a mapping of path templates to operations');
    } else {
      for (const [template, item] of Object.entries(root.paths)) {
        const itemPath = ['paths', template];
        if (!template.startsWith('/')) {
          this.fail(itemPath, `a path template must start with "/": '${template}'`);
          continue;
        }
        const found = this.deref(item, itemPath, 'a path item');
        if (found === undefined) continue;
        const shared = this.parameters(found.value.parameters, [...found.path, 'parameters']);
        for (const method of OPERATION_METHODS) {
          const op = found.value[method];
          if (op === undefined) continue;
          const opPath = [...found.path, method];
          if (!isObject(op)) {
            this.fail(opPath, 'expected an operation (a mapping)');
            continue;
          }
          const operation = this.operation(method, template, op, opPath, shared, rootSecurity);
          if (operation !== undefined) operations.push(operation);
        }
      }
      if (operations.length === 0 && this.issues.length === 0) this.fail(['paths'], 'the document has no operations: there is nothing to validate against');
    }
    if (this.issues.length > 0) throw new ConfigError(this.issues);
    const source = this.source;
    return Object.freeze({
      file: source.file,
      version: this.version,
      root: root as JsonObject,
      title,
      serverPath: serverPath(root.servers),
      operations,
      securitySchemes,
      lookup: (ref: string) => this.lookup(ref),
      issue: (path: ConfigPath, message: string, key?: boolean) => source.issue(path, message, key),
    });
  }

  security(value: unknown, path: ConfigPath): Record<string, string[]>[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return this.fail(path, 'expected a list of security requirements');
    const out: Record<string, string[]>[] = [];
    value.forEach((requirement, i) => {
      if (!isObject(requirement)) return this.fail([...path, i], 'expected a security requirement (scheme name → scopes)');
      const entry: Record<string, string[]> = {};
      for (const [name, scopes] of Object.entries(requirement)) {
        if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) return this.fail([...path, i, name], 'expected a list of scope names');
        entry[name] = scopes as string[];
      }
      out.push(entry);
      return undefined;
    });
    return out;
  }

  parameters(value: unknown, path: ConfigPath): ParameterInfo[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.fail(path, 'expected a list of parameters');
      return [];
    }
    const out: ParameterInfo[] = [];
    value.forEach((entry, i) => {
      const found = this.deref(entry, [...path, i], 'a parameter');
      if (found === undefined) return;
      const p = found.value;
      const at = found.path;
      if (typeof p.name !== 'string' || p.name === '') return void this.fail(at, 'a parameter needs a `name`');
      if (!PARAMETER_LOCATIONS.includes(p.in as ParameterLocation)) return void this.fail([...at, 'in'], `expected \`in\` to be one of path, query, header, cookie`);
      const location = p.in as ParameterLocation;
      if (location === 'path' && p.required !== true) return void this.fail(at, `the path parameter '${p.name}' must say \`required: true\``);
      const defaultStyle = location === 'query' || location === 'cookie' ? 'form' : 'simple';
      const style = typeof p.style === 'string' ? p.style : defaultStyle;
      const allowed = STYLES[location];
      if (!allowed.includes(style)) return void this.fail([...at, 'style'], `style '${style}' is not valid for a ${location} parameter (expected ${allowed.join(', ')})`);
      let schema: SchemaAt | undefined;
      let json = false;
      if (p.schema !== undefined) schema = { schema: p.schema, path: [...at, 'schema'] };
      else if (isObject(p.content)) {
        const types = Object.keys(p.content);
        if (types.length !== 1) return void this.fail([...at, 'content'], 'a parameter\'s `content` must have exactly one media type');
        const media = p.content[types[0]!];
        if (!/^application\/(.+\+)?json$/i.test(types[0]!)) return void this.fail([...at, 'content'], `a parameter serialized as '${types[0]}' cannot be validated: only JSON content is supported`);
        json = true;
        if (isObject(media) && media.schema !== undefined) schema = { schema: media.schema, path: [...at, 'content', types[0]!, 'schema'] };
      }
      const name = location === 'header' ? p.name.toLowerCase() : p.name;
      // The header parameters Accept, Content-Type and Authorization are ignored (OpenAPI 3 §4.8.12.1).
      if (location === 'header' && (name === 'accept' || name === 'content-type' || name === 'authorization')) return;
      out.push({
        name,
        in: location,
        required: p.required === true,
        style,
        explode: typeof p.explode === 'boolean' ? p.explode : style === 'form',
        allowEmptyValue: p.allowEmptyValue === true,
        schema,
        json,
        path: at,
      });
    });
    return out;
  }

  operation(method: string, template: string, op: JsonObject, path: ConfigPath, shared: ParameterInfo[], rootSecurity: Record<string, string[]>[] | undefined): OperationInfo | undefined {
    const own = this.parameters(op.parameters, [...path, 'parameters']);
    const parameters = [...shared.filter((s) => !own.some((o) => o.name === s.name && o.in === s.in)), ...own];
    const declared = new Set(parameters.filter((p) => p.in === 'path').map((p) => p.name));
    for (const name of templateParameters(template)) {
      if (!declared.has(name)) this.fail(path, `the path parameter '{${name}}' of '${template}' is not declared in \`parameters\``);
    }
    let requestBody: OperationInfo['requestBody'];
    if (op.requestBody !== undefined) {
      const found = this.deref(op.requestBody, [...path, 'requestBody'], 'a request body');
      if (found !== undefined) {
        const content = this.content(found.value.content, [...found.path, 'content']);
        if (content === undefined || content.length === 0) this.fail([...found.path, 'content'], 'a request body needs `content` with at least one media type');
        else requestBody = { required: found.value.required === true, content };
      }
    }
    const responses: ResponseInfo[] = [];
    if (isObject(op.responses)) {
      for (const [status, value] of Object.entries(op.responses)) {
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) {
          this.fail([...path, 'responses', status], `'${status}' is not a status code, a range like 2XX, or default`);
          continue;
        }
        const found = this.deref(value, [...path, 'responses', status], 'a response');
        if (found === undefined) continue;
        responses.push({ status, content: found.value.content === undefined ? undefined : this.content(found.value.content, [...found.path, 'content']) ?? [] });
      }
    }
    const security = this.security(op.security, [...path, 'security']) ?? rootSecurity;
    return {
      method: method.toUpperCase(),
      template,
      operationId: typeof op.operationId === 'string' ? op.operationId : undefined,
      parameters,
      requestBody,
      responses,
      security: security ?? [],
      securityDeclared: security !== undefined,
      summary: typeof op.summary === 'string' ? op.summary : undefined,
      path,
    };
  }

  content(value: unknown, path: ConfigPath): MediaInfo[] | undefined {
    if (value === undefined) return undefined;
    if (!isObject(value)) return this.fail(path, 'expected a mapping of media types');
    const out: MediaInfo[] = [];
    for (const [range, media] of Object.entries(value)) {
      if (!/^([\w.+-]+|\*)\/([\w.+-]+|\*)(\s*;.*)?$/.test(range)) {
        this.fail([...path, range], `'${range}' is not a media type`);
        continue;
      }
      const schema = isObject(media) && media.schema !== undefined ? { schema: media.schema, path: [...path, range, 'schema'] } : undefined;
      out.push({ range: range.split(';')[0]!.trim().toLowerCase(), schema });
    }
    return out;
  }
}

const STYLES: Record<ParameterLocation, readonly string[]> = {
  path: ['simple', 'label', 'matrix'],
  query: ['form', 'spaceDelimited', 'pipeDelimited', 'deepObject'],
  header: ['simple'],
  cookie: ['form'],
};

export function templateParameters(template: string): string[] {
  return [...template.matchAll(/\{([^{}/]+)\}/g)].map((m) => m[1]!);
}

function serverPath(servers: unknown): string {
  if (!Array.isArray(servers) || !isObject(servers[0]) || typeof servers[0].url !== 'string') return '';
  const server = servers[0];
  // Server variables take their defaults (`/{version}` with default v1 → /v1).
  const variables = isObject(server.variables) ? server.variables : {};
  const url = (server.url as string).replace(/\{([^{}]+)\}/g, (_, name: string) => {
    const variable = variables[name];
    return isObject(variable) && typeof variable.default === 'string' ? variable.default : '';
  });
  let path: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    try {
      path = new URL(url).pathname;
    } catch {
      return '';
    }
  } else path = url.startsWith('/') ? url : '';
  path = path.replace(/\/+$/, '');
  return path;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
