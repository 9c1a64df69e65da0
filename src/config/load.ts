import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { ConfigSchema, type RampartConfig } from './schema.js';
import { ConfigError, ConfigFileError, didYouMean, formatPath, type ConfigIssue, type ConfigPath } from './errors.js';
import { validatePolicies } from './policies.js';
import { checkSemantics } from './semantics.js';

/** A gateway forwards every route to an upstream; a library plugin applies policies to the host app's own routes. */
export type Purpose = 'gateway' | 'library';


/** A validated, defaulted, deep-frozen config and how to point back into its source. */
export interface LoadedConfig {
  readonly config: RampartConfig;
  /** Path of the file it came from, or `<inline>`. */
  readonly file: string;
  /** Directory relative paths in the config resolve against. */
  readonly dir: string;
  /** Valid but risky settings (plain HTTP served, no HTTPS at all): printed by `validate`, logged at start. */
  readonly warnings: readonly ConfigIssue[];
  /** Source position of a config path, for errors found after loading (policy `create()`). */
  locate(path: ConfigPath): { line: number; column: number };
  /** Turns a message about a config path into a ConfigIssue. */
  issue(path: ConfigPath, message: string): ConfigIssue;
}

export function createAjv(useDefaults: boolean): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults, strict: true, allowUnionTypes: true, verbose: true });
  ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
  return ajv;
}

let coreValidator: ValidateFunction | undefined;
function validateCore(value: unknown): ErrorObject[] {
  coreValidator ??= createAjv(true).compile(ConfigSchema);
  return coreValidator(value) ? [] : pruneUnionErrors(coreValidator.errors ?? []);
}

/**
 * ajv reports a failed `anyOf` with the errors of every branch. Keep what helps: when the value
 * has the type of one branch (no type error of that branch at the value itself), that branch's errors; otherwise
 * the `anyOf` error alone ("expected 'auto' or a mapping …").
 */
export function pruneUnionErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  if (unions.length === 0) return [...errors];
  const drop = new Set<ErrorObject>();
  for (const union of unions) {
    const prefix = `${union.schemaPath.slice(0, -'/anyOf'.length)}/anyOf/`;
    const branches = new Map<string, ErrorObject[]>();
    for (const e of errors) {
      if (!e.schemaPath.startsWith(prefix)) continue;
      const branch = e.schemaPath.slice(prefix.length).split('/')[0]!;
      branches.set(branch, [...(branches.get(branch) ?? []), e]);
    }
    const shaped = [...branches.values()].find((list) =>
      list.every((e) => e.instancePath.length > union.instancePath.length || !(e.keyword === 'type' || e.keyword === 'const' || e.keyword === 'enum')),
    );
    for (const list of branches.values()) if (list !== shaped) for (const e of list) drop.add(e);
    if (shaped !== undefined) drop.add(union);
  }
  return errors.filter((e) => !drop.has(e));
}

/** Reads, interpolates, validates and freezes a config file. Throws ConfigFileError or ConfigError. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, purpose: Purpose = 'gateway'): LoadedConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(code ?? error);
    throw new ConfigFileError(`cannot read config file '${file}': ${why}`, { cause: error });
  }
  return loadConfigText(text, file, dirname(path), env, purpose);
}

/** Same as loadConfigFile, for text already in hand. `file` is only used in messages. */
export function loadConfigText(text: string, file: string, dir: string, env: NodeJS.ProcessEnv = process.env, purpose: Purpose = 'gateway'): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, keepSourceTokens: false });
  const source = new Source(doc, lineCounter, file);
  const issues: ConfigIssue[] = [];
  for (const error of doc.errors) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    issues.push({ file, line, column: col, path: '', message: firstLine(error.message) });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  interpolate(doc, source, dir, env, issues);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    // "Excessive alias count": a billion-laughs document.
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `the document cannot be expanded: ${firstLine((error as Error).message)}` }]);
  }
  return finish(raw, source, dir, issues, purpose);
}

/** Validates a config given as an object (library mode). Positions are not available. */
export function loadConfigObject(value: unknown, purpose: Purpose = 'library', dir = process.cwd()): LoadedConfig {
  return finish(structuredClone(value), new Source(undefined, undefined, '<inline>'), dir, [], purpose);
}

function finish(raw: unknown, source: Source, dir: string, issues: ConfigIssue[], purpose: Purpose): LoadedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([source.issue([], 'expected a mapping at the top level')]);
  }
  source.data = raw;
  for (const error of validateCore(raw)) {
    const issue = source.fromAjv(error, []);
    if (!source.failedAt.has(`${issue.line}:${issue.column}`)) issues.push(issue);
  }
  const config = raw as RampartConfig;
  const warnings: ConfigIssue[] = [];
  if (issues.length === 0) checkSemantics(config, source, issues, purpose, warnings);
  // Policy blocks are checked even when other parts are wrong, so one run shows every error.
  validatePolicies(config, source, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  deepFreeze(config);
  return Object.freeze({
    config,
    file: source.file,
    dir,
    warnings: Object.freeze(warnings),
    locate: (path: ConfigPath) => source.locate(path),
    issue: (path: ConfigPath, message: string) => source.issue(path, message),
  });
}

/**
 * Resolves `${NAME}`, `${NAME:-default}` and `${file:PATH}` in string values (never in keys).
 * `$${` is a literal `${`. A plain (unquoted) scalar that is exactly one reference takes the type
 * its value reads as, so `port: ${PORT}` is a number; a quoted one stays a string.
 */
function interpolate(doc: Document, source: Source, dir: string, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): void {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      let failed = false;
      const replaced = original.replace(/\$\$\{|\$\{([^}]*)\}/g, (match, ref: string | undefined) => {
        if (match === '$${') return '${';
        const result = resolveReference(ref ?? '', dir, env);
        if (typeof result === 'object') {
          if (!failed) {
            const at = source.positionOf(node);
            issues.push({ file: source.file, line: at.line, column: at.column, path: formatPath(pathOf(ancestors, node)), message: result.error });
            source.failedAt.add(`${at.line}:${at.column}`);
          }
          failed = true;
          return '';
        }
        return result;
      });
      if (failed) return;
      const whole = /^\$\{[^}]*\}$/.test(original);
      node.value = whole && node.type === 'PLAIN' ? typed(replaced) : replaced;
    },
  });
}

/** The config path of a node from visit()'s ancestors (pairs give keys, sequences indexes). */
function pathOf(ancestors: readonly unknown[], node: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  for (let i = 0; i < ancestors.length; i++) {
    const a = ancestors[i];
    if (isPair(a)) path.push(isScalar(a.key) ? String(a.key.value) : String(a.key));
    else if (isSeq(a)) path.push(a.items.indexOf((ancestors[i + 1] ?? node) as never));
  }
  return path;
}

function resolveReference(ref: string, dir: string, env: NodeJS.ProcessEnv): string | { error: string } {
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    if (path === '') return { error: 'empty file reference: expected ${file:PATH}' };
    try {
      return readFileSync(resolve(dir, path), 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      return { error: `cannot read secret file '${path}': ${(error as NodeJS.ErrnoException).code ?? 'error'}` };
    }
  }
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(ref);
  if (match === null) return { error: `invalid reference '\${${ref}}': expected \${NAME}, \${NAME:-default} or \${file:PATH}` };
  const value = env[match[1]!];
  if (value !== undefined && value !== '') return value;
  if (match[2] !== undefined) return match[2];
  return { error: `environment variable ${match[1]} is not set (use \${${match[1]}:-default} for a default)` };
}

function typed(value: string): string | number | boolean {
  if (/^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(value)) return Number(value);
  if (value === 'true') return true;
  if (value === 'false') return false;
  return value;
}

/** Points config paths back at the YAML source. */
export class Source {
  /** The interpolated data being validated, for quoting a wrong value back. */
  data: unknown;
  /** Positions where interpolation failed: the schema's complaint about the same value is noise. */
  readonly failedAt = new Set<string>();

  constructor(
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter | undefined,
    readonly file: string,
  ) {}

  positionOf(node: Node | null | undefined): { line: number; column: number } {
    if (node?.range === undefined || node.range === null || this.lines === undefined) return { line: 0, column: 0 };
    const { line, col } = this.lines.linePos(node.range[0]);
    return { line, column: col };
  }

  /** Position of the value at `path`; with `key`, of the key naming it. Falls back to the nearest parent. */
  locate(path: ConfigPath, key = false): { line: number; column: number } {
    if (this.doc === undefined) return { line: 0, column: 0 };
    let node: unknown = this.doc.contents;
    let keyNode: unknown;
    let last: unknown = node;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === part);
        if (pair === undefined) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof part === 'number') {
        node = node.items[part];
        keyNode = node;
      } else break;
      if (node === undefined || node === null) {
        node = undefined;
        break;
      }
      last = node;
    }
    const target = key && keyNode !== undefined ? keyNode : node ?? keyNode ?? last;
    return this.positionOf(target as Node);
  }

  issue(path: ConfigPath, message: string, key = false): ConfigIssue {
    const at = this.locate(path, key);
    return { file: this.file, line: at.line, column: at.column, path: formatPath(path), message };
  }

  /** Turns an ajv error (relative to `base`) into a ConfigIssue with a readable message. */
  fromAjv(error: ErrorObject, base: ConfigPath): ConfigIssue {
    const path: (string | number)[] = [...base, ...pointerToPath(error.instancePath)];
    const schema = error.parentSchema as Record<string, unknown> | undefined;
    const expected = typeof schema?.['x-expected'] === 'string' ? (schema['x-expected'] as string) : undefined;
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case 'additionalProperties': {
        const name = String(params.additionalProperty);
        const parent = error.parentSchema as { properties?: Record<string, unknown>; patternProperties?: unknown };
        const known = Object.keys(parent?.properties ?? {});
        if (parent?.patternProperties !== undefined) {
          return this.issue([...path, name], `invalid name '${name}': expected ${expected ?? 'a name of lowercase letters, digits, ".", "_" or "-"'}`, true);
        }
        const suggestion = didYouMean(name, known);
        const hint = suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : known.length > 0 ? `; expected one of: ${known.join(', ')}` : '';
        return this.issue([...path, name], `unknown key '${name}'${hint}`, true);
      }
      case 'required':
        return this.issue(path, `missing required key '${String(params.missingProperty)}'`);
      case 'type':
        return this.issue(path, `expected ${expected ?? article(String(params.type))}, got ${describe(this.valueAt(path))}`);
      case 'enum': {
        const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
        const got = this.valueAt(path);
        const suggestion = typeof got === 'string' ? didYouMean(got, (params.allowedValues as unknown[]).map(String)) : undefined;
        return this.issue(path, `expected one of ${allowed}, got ${describe(got)}${suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : ''}`);
      }
      case 'pattern':
      case 'format':
        return this.issue(path, `expected ${expected ?? `a string matching ${String(params.pattern ?? params.format)}`}, got ${describe(this.valueAt(path))}`);
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        return this.issue(path, `expected a number ${String(params.comparison)} ${String(params.limit)}, got ${describe(this.valueAt(path))}`);
      case 'minItems':
        return this.issue(path, `expected at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`);
      case 'maxItems':
        return this.issue(path, `expected at most ${String(params.limit)} items`);
      case 'uniqueItems':
        return this.issue(path, `expected unique items (items ${String(params.j)} and ${String(params.i)} are the same)`);
      case 'minLength':
        return this.issue(path, params.limit === 1 ? 'expected a non-empty string' : `expected at least ${String(params.limit)} characters`);
      case 'maxLength':
        return this.issue(path, `expected at most ${String(params.limit)} characters`);
      case 'anyOf':
        return this.issue(path, `expected ${expected ?? 'another kind of value'}, got ${describe(this.valueAt(path))}`);
      default:
        return this.issue(path, error.message ?? `invalid (${error.keyword})`);
    }
  }

  private valueAt(path: ConfigPath): unknown {
    let value = this.data;
    for (const part of path) {
      if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
      value = (value as Record<string | number, unknown>)[part];
    }
    return value;
  }
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^(0|[1-9]\d*)$/.test(part) ? Number(part) : part));
}

function article(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    null: 'null',
  };
  return names[type] ?? type;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return value.length > 40 ? `a string '${value.slice(0, 40)}…'` : `'${value}'`;
  return `${typeof value} ${String(value)}`;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
