import type { RampartConfig } from './schema.js';
import { didYouMean, type ConfigIssue, type ConfigPath } from './errors.js';
import type { Source } from './load.js';
import type { VersionConfig } from '../policies/versioning/schema.js';

/** Request headers that cannot name a version: they mean something else to HTTP or to Rampart. */
const RESERVED_HEADERS = new Set(['accept', 'authorization', 'connection', 'content-length', 'content-type', 'cookie', 'host', 'origin', 'proxy-authorization', 'te', 'transfer-encoding', 'upgrade', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);

/**
 * `versions:` and the routes' `version` / `successorPath`: references, dates in order, successor
 * chains without cycles, prefixes the routes really have. Sharing a path between versions is the
 * router's to check (it reports the route).
 */
export function checkVersions(config: RampartConfig, source: Source, issues: ConfigIssue[], warnings: ConfigIssue[], now = Date.now()): void {
  const versions = config.versions;
  const names = Object.keys(versions);
  let defaultVersion: string | undefined;
  for (const [name, version] of Object.entries(versions)) {
    const at = (...rest: (string | number)[]): ConfigPath => ['versions', name, ...rest];
    checkLifecycle(version, at, source, issues, warnings, now, `version '${name}'`);
    const select = version.select;
    if (select !== undefined) {
      if ([select.header, select.mediaType, select.query].filter((x) => x !== undefined).length !== 1) {
        issues.push(source.issue(at('select'), "expected exactly one of 'header', 'mediaType' and 'query'"));
      } else if (select.header !== undefined && RESERVED_HEADERS.has(select.header)) {
        issues.push(source.issue(at('select', 'header'), select.header === 'accept' ? "to select by Accept, use 'mediaType: <parameter>' (Accept: application/json; version=2)" : `'${select.header}' cannot name a version`));
      }
      if (version.prefix !== undefined) issues.push(source.issue(at('select'), "a version is chosen by its path 'prefix' or by 'select', not both"));
    }
    if (version.default) {
      if (select === undefined) issues.push(source.issue(at('default'), "'default' is for versions chosen by 'select' (a request for a path-prefix version names it in the path)"));
      else if (defaultVersion !== undefined) issues.push(source.issue(at('default'), `only one version can be the default ('${defaultVersion}' is already)`));
      else defaultVersion = name;
    }
    const successor = version.successor;
    if (successor === undefined) continue;
    if (successor === name) {
      issues.push(source.issue(at('successor'), 'a version cannot be its own successor'));
    } else if (!Object.hasOwn(versions, successor)) {
      const suggestion = didYouMean(successor, names);
      issues.push(source.issue(at('successor'), `unknown version '${successor}'${suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : `; defined: ${names.join(', ')}`}`));
    } else {
      // Following successors must end: v1 → v2 → v1 sends clients in circles.
      const seen = [name];
      let next: string | undefined = successor;
      while (next !== undefined && Object.hasOwn(versions, next) && !seen.includes(next)) {
        seen.push(next);
        next = versions[next]!.successor;
      }
      if (next !== undefined && seen.includes(next)) issues.push(source.issue(at('successor'), `successors go round in a circle: ${[...seen, next].join(' → ')}`));
    }
  }

  config.routes.forEach((route, i) => {
    const at = (...rest: (string | number)[]): ConfigPath => ['routes', i, ...rest];
    if (route.version === undefined) {
      if (route.successorPath !== undefined) issues.push(source.issue(at('successorPath'), "'successorPath' needs a 'version' with a 'successor'"));
      return;
    }
    const version = versions[route.version];
    if (version === undefined) {
      const suggestion = didYouMean(route.version, names);
      const hint = suggestion !== undefined ? ` (did you mean '${suggestion}'?)` : names.length > 0 ? `; defined: ${names.join(', ')}` : '; no versions are defined (top-level versions:)';
      issues.push(source.issue(at('version'), `unknown version '${route.version}'${hint}`));
      return;
    }
    const prefix = version.prefix;
    if (prefix !== undefined && route.match.path !== prefix && !route.match.path.startsWith(`${prefix}/`)) {
      issues.push(source.issue(at('match', 'path'), `route '${route.name}' is in version '${route.version}', whose paths start with '${prefix}', but its path is '${route.match.path}'`));
    }
    const template = route.successorPath;
    if (template !== undefined) {
      if (version.successor === undefined) issues.push(source.issue(at('successorPath'), `version '${route.version}' has no 'successor'`));
      const params = new Set([...route.match.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
      for (const used of [...template.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!)) {
        if (!params.has(used)) issues.push(source.issue(at('successorPath'), `parameter ':${used}' is not in the path pattern '${route.match.path}'`));
      }
      if (/:(?![A-Za-z_])/.test(template)) issues.push(source.issue(at('successorPath'), "':' must start a parameter ':name'"));
      if (template.endsWith('*') && !route.match.path.endsWith('*')) issues.push(source.issue(at('successorPath'), `'*' is used but the path pattern '${route.match.path}' has no wildcard`));
    }
  });
}

/**
 * Dates of a version (or of a built-in one, `identity.usersApi.v1`): real dates, the sunset not
 * before the deprecation, the deprecation link only with a deprecation. A sunset already passed is
 * valid (the routes answer 410) but said out loud.
 */
export function checkLifecycle(
  version: Pick<VersionConfig, 'deprecated' | 'sunset' | 'link'>,
  at: (...rest: string[]) => ConfigPath,
  source: Source,
  issues: ConfigIssue[],
  warnings: ConfigIssue[] | undefined,
  now: number,
  what: string,
): void {
  const deprecated = version.deprecated === undefined ? undefined : parseDateTime(version.deprecated);
  const sunset = version.sunset === undefined ? undefined : parseDateTime(version.sunset);
  if (deprecated === null) issues.push(source.issue(at('deprecated'), `'${version.deprecated!}' is not a real date and time`));
  if (sunset === null) issues.push(source.issue(at('sunset'), `'${version.sunset!}' is not a real date and time`));
  if (typeof deprecated === 'number' && typeof sunset === 'number' && sunset < deprecated) {
    issues.push(source.issue(at('sunset'), `expected a sunset at or after the deprecation (${version.deprecated!})`));
  }
  if (version.link !== undefined && version.deprecated === undefined) {
    issues.push(source.issue(at('link'), "'link' is sent with the Deprecation header: set 'deprecated' too"));
  }
  if (typeof sunset === 'number' && sunset <= now) warnings?.push(source.issue(at('sunset'), `${what} is past its sunset: its routes answer 410 RMP_VERSION_RETIRED`));
}

/** Milliseconds since the epoch of an RFC 3339 date-time the schema's pattern accepted, or null when it names no real instant (Feb 30, 25:00). */
export function parseDateTime(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}
