import { dirname, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { readOpenApi, type OpenApiDocument, type OperationInfo } from '../openapi/document.js';
import { compileApi } from '../openapi/compile.js';

/**
 * `rampart init --from-openapi spec.yaml`: a starter rampart.yaml that protects every operation
 * of the document — one route per path (split when its methods differ in security), the
 * document's security schemes mapped onto authentication policies, scopes onto `authorize`, and
 * validation with the response allowlist on for all of them (the upstream names the document).
 * What could not be read from the document is assumed, and every assumption is returned.
 */

export interface InitOptions {
  /** Where the config will be written (relative paths in it resolve from there). */
  readonly output: string;
  /** The API's base URL; default: the document's first absolute `servers` URL. */
  readonly upstream?: string | undefined;
}

export interface InitResult {
  readonly yaml: string;
  readonly assumptions: readonly string[];
  readonly routes: number;
  readonly operations: number;
}

const NAME_MAX = 64;

export function initFromOpenApi(specFile: string, options: InitOptions): InitResult {
  const doc = readOpenApi(resolve(specFile), process.cwd(), specFile);
  // The document must compile as the gateway will use it: fail here, not at the first start.
  compileApi(doc);
  const assumptions: string[] = [];
  const outDir = dirname(resolve(options.output));
  const upstreamUrl = upstreamOf(doc, options.upstream, assumptions);
  const scopes = new Set<string>();
  const routes: Record<string, unknown>[] = [];
  const names = new Set<string>();
  let usesBearer = false;
  let usesApiKey = false;
  // Templates that route alike (`/a/{x}.json`, `/a/{x}.xml` → `/a/:p2`) share routes: the
  // openapi policy tells their operations apart.
  const byPath = new Map<string, OperationInfo[]>();
  for (const op of doc.operations) {
    const key = routerPath(op.template);
    byPath.set(key, [...(byPath.get(key) ?? []), op]);
  }
  for (const [gatewayPath, ops] of byPath) {
    const template = ops[0]!.template;
    // Methods of one path with the same authentication share a route.
    const groups = new Map<string, { auth: Auth; ops: OperationInfo[] }>();
    for (const op of ops) {
      const auth = authOf(doc, op, assumptions);
      const key = auth.public ? 'public' : [...auth.policies].sort().join(',');
      const group = groups.get(key) ?? { auth, ops: [] };
      group.ops.push(op);
      groups.set(key, group);
    }
    for (const { auth, ops: groupOps } of groups.values()) {
      const methods = [...new Set(groupOps.map((o) => o.method))];
      if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
      const base = routeName(template, groups.size > 1 ? groupOps.map((o) => o.method.toLowerCase()).join('-') : '');
      let name = base;
      for (let i = 2; names.has(name); i++) name = `${base.slice(0, NAME_MAX - String(i).length - 1)}-${i}`;
      names.add(name);
      const route: Record<string, unknown> = { name, match: { path: doc.serverPath + gatewayPath, methods }, upstream: 'api' };
      if (auth.public) {
        route.public = true;
      } else {
        const policies: Record<string, unknown> = {};
        if (auth.policies.has('jwt')) {
          policies.jwt = { identity: true };
          usesBearer = true;
        }
        if (auth.policies.has('api-key')) {
          policies['api-key'] = { identity: true, ...(auth.apiKeyHeader !== undefined && auth.apiKeyHeader !== 'x-api-key' ? { header: auth.apiKeyHeader } : {}) };
          usesApiKey = true;
        }
        const byMethod: Record<string, unknown> = {};
        for (const op of groupOps) {
          const needed = scopesOf(op, assumptions);
          for (const s of needed.all ?? needed.any ?? []) scopes.add(s);
          if (byMethod[op.method] !== undefined && (needed.all !== undefined || needed.any !== undefined)) {
            // Two operations on one gateway route and method: the route needs what both need.
            const previous = byMethod[op.method] as { scopes: { all?: string[]; any?: string[] } };
            const all = [...new Set([...(previous.scopes.all ?? previous.scopes.any ?? []), ...(needed.all ?? needed.any ?? [])])].sort();
            byMethod[op.method] = { scopes: { all } };
            assumptions.push(`${op.method} ${gatewayPath}: several operations share this route; all of their scopes are required (${all.join(', ')})`);
          } else if (needed.all !== undefined) byMethod[op.method] = { scopes: { all: needed.all } };
          else if (needed.any !== undefined) byMethod[op.method] = { scopes: { any: needed.any } };
          if (op.method === 'GET' && byMethod.GET !== undefined) byMethod.HEAD = byMethod.GET;
        }
        if (Object.keys(byMethod).length > 0) policies.authorize = { methods: byMethod };
        route.policies = policies;
      }
      routes.push(route);
    }
  }
  const spec = relative(outDir, resolve(specFile)) || specFile;
  const config: Record<string, unknown> = {
    mode: 'development',
    dataDir: './data',
    server: { listen: { host: '127.0.0.1', port: 8443 }, tls: 'auto', http: { listen: { host: '127.0.0.1', port: 8080 } } },
  };
  assumptions.push('development mode with a self-signed certificate (tls: auto) and a generated master key: for production set mode: production, server.tls.cert/key and identity.masterKey (docs/configuration.md)');
  if (usesBearer || usesApiKey) {
    config.identity = { issuer: 'https://localhost:8443', scopes: { user: [...scopes].sort(), admin: [...scopes].sort() } };
    assumptions.push(
      "bearer tokens and API keys are Rampart's own (identity service): create the first admin with `rampart users create --admin <email>`; to use another issuer, replace `jwt: { identity: true }` with `jwt: { jwksUrl, issuer, audience, algorithms }`",
    );
    if (scopes.size > 0) assumptions.push(`the roles user and admin are granted every scope the document names (${[...scopes].sort().join(', ')}): narrow identity.scopes to what each role needs`);
  }
  config.upstreams = { api: { targets: [{ url: upstreamUrl }], openapi: spec } };
  config.defaults = { 'request-id': {}, headers: {}, 'ip-rate-limit': {}, openapi: { strict: true, unknownQuery: 'refuse', response: { allowlist: true, undeclared: 'refuse' } } };
  config.routes = routes;
  const header = [
    `# Rampart config for ${doc.title}, written by \`rampart init --from-openapi ${specFile}\`.`,
    '# Every operation of the document has a route; requests are validated against the document and',
    '# JSON answers cut down to what it declares (upstreams.api.openapi). Check it: rampart validate -c <this file>',
    '',
  ].join('\n');
  return { yaml: header + stringify(config, { lineWidth: 0 }), assumptions, routes: routes.length, operations: doc.operations.length };
}

interface Auth {
  public: boolean;
  policies: Set<'jwt' | 'api-key'>;
  apiKeyHeader: string | undefined;
}

function authOf(doc: OpenApiDocument, op: OperationInfo, assumptions: string[]): Auth {
  const label = `${op.method} ${op.template}`;
  const auth: Auth = { public: false, policies: new Set(), apiKeyHeader: undefined };
  if (op.security.length === 0 && op.securityDeclared) {
    auth.public = true;
    return auth;
  }
  if (op.security.length === 0) {
    auth.policies.add('jwt');
    assumptions.push(`${label} declares no security: it is given bearer authentication anyway (say \`public: true\` on its route to open it)`);
    return auth;
  }
  // An empty requirement ({}) among the alternatives makes authentication optional: OpenAPI's way of saying public.
  if (op.security.some((r) => Object.keys(r).length === 0)) {
    auth.public = true;
    if (op.security.length > 1) assumptions.push(`${label}: one of its security alternatives is empty (authentication optional): its route is public, and no scope is checked`);
    return auth;
  }
  for (const requirement of op.security) {
    const names = Object.keys(requirement);
    // Several schemes in one requirement must all be satisfied; a route's authentication
    // policies are alternatives, so only the first of them is used (never "either").
    if (names.length > 1) assumptions.push(`${label}: the requirement {${names.join(', ')}} needs every one of those schemes; Rampart checks only '${names[0]}' here (add the others upstream, or an authorize rule)`);
    for (const name of names.slice(0, 1)) {
      const scheme = doc.securitySchemes[name];
      const type = scheme?.type;
      if (type === 'http' && String(scheme?.scheme).toLowerCase() === 'bearer') auth.policies.add('jwt');
      else if (type === 'oauth2' || type === 'openIdConnect') auth.policies.add('jwt');
      else if (type === 'apiKey' && scheme?.in === 'header' && typeof scheme.name === 'string') {
        auth.policies.add('api-key');
        auth.apiKeyHeader = scheme.name.toLowerCase();
      } else {
        auth.policies.add('jwt');
        assumptions.push(`${label}: the security scheme '${name}' (${String(type)}${scheme?.in === undefined ? '' : ` in ${String(scheme.in)}`}) has no Rampart equivalent: bearer authentication is used instead`);
      }
    }
  }
  return auth;
}

/** Scopes the operation needs: one requirement's list (`all`), or any of several alternatives'. */
function scopesOf(op: OperationInfo, assumptions: string[]): { all?: string[]; any?: string[] } {
  const lists = op.security.map((r) => [...new Set(Object.values(r).flat())].sort());
  if (lists.length === 0) return {};
  if (lists.some((l) => l.length === 0)) {
    const scoped = [...new Set(lists.flat())].sort();
    if (scoped.length === 0) return {};
    // One alternative needs no scope (an API key), another does (a bearer token): Rampart cannot
    // tell which alternative a caller used at authorization, so the scopes are required of all.
    assumptions.push(`${op.method} ${op.template}: some of its security alternatives need scopes and some none; every caller needs one of ${scoped.join(', ')} (give API keys those scopes)`);
    return { any: scoped };
  }
  const first = lists[0]!;
  if (lists.every((l) => l.join(' ') === first.join(' '))) return { all: first };
  const union = [...new Set(lists.flat())].sort();
  assumptions.push(`${op.method} ${op.template}: its security alternatives need different scopes; any one of ${union.join(', ')} is required`);
  return { any: union };
}

function upstreamOf(doc: OpenApiDocument, given: string | undefined, assumptions: string[]): string {
  if (given !== undefined) return given.replace(/\/+$/, '');
  const servers = doc.root.servers;
  const first = Array.isArray(servers) && typeof servers[0] === 'object' && servers[0] !== null && !Array.isArray(servers[0]) ? servers[0].url : undefined;
  let url: URL | undefined;
  if (typeof first === 'string' && /^https?:\/\/[^{}]+$/.test(first)) {
    try {
      url = new URL(first);
    } catch {
      url = undefined;
    }
  }
  if (url !== undefined) {
    assumptions.push(`the API is served at ${url.origin} (the document's first server); the gateway forwards paths unchanged, ${doc.serverPath === '' ? 'at the root' : `under ${doc.serverPath}`} (use --upstream to change it)`);
    return url.origin;
  }
  assumptions.push('the document names no absolute server URL: the upstream is assumed at http://127.0.0.1:8080 (use --upstream)');
  return 'http://127.0.0.1:8080';
}

/** `/pets/{petId}` → `/pets/:petId`; a segment only partly a parameter becomes one parameter. */
function routerPath(template: string): string {
  return template
    .split('/')
    .map((segment, i) => {
      const whole = /^\{([^{}]+)\}$/.exec(segment);
      if (whole) return `:${safeParam(whole[1]!)}`;
      // A segment only partly a parameter, or with a `:` (`/ops:cancel`), becomes one parameter:
      // the gateway's patterns take whole-segment parameters only.
      if (segment.includes('{') || segment.includes(':')) return `:p${i}`;
      return segment;
    })
    .join('/');
}

function safeParam(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(safe) ? safe : `p_${safe}`;
}

function routeName(template: string, suffix: string): string {
  const slug = template
    .toLowerCase()
    .replace(/[{}]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const base = (slug === '' ? 'root' : slug).slice(0, NAME_MAX - (suffix === '' ? 0 : suffix.length + 1));
  return suffix === '' ? base : `${base}-${suffix}`;
}
