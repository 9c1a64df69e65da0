import type { LoadedConfig } from './load.js';
import type { ConfigIssue, ConfigPath } from './errors.js';
import { resolvePolicies, withPolicyDefaults } from './policies.js';

/**
 * What a config keeps in process memory that several worker processes (`rampart start
 * --workers N`) would each keep their own copy of, and so get wrong: rate-limit counters (a limit
 * of 100/min would become 100/min per worker), revocations (a logout through one worker would not
 * reach the others) and the identity service's per-IP limits. Each is an issue located at the
 * setting that chose the memory store, saying what would share it. Empty: safe to run on workers.
 *
 * The identity service on SQLite is refused as well: SQLite in WAL mode would be safe for the
 * rows themselves, but several processes writing one file contend for its lock (SQLITE_BUSY under
 * load) and nothing tells the other workers that a key was rotated until their next refresh;
 * PostgreSQL is what the multi-node setup is proven on.
 */
export function sharedStateIssues(loaded: LoadedConfig): ConfigIssue[] {
  const config = loaded.config;
  const redis = config.redis !== undefined;
  const issues = new Map<string, ConfigIssue>();
  const add = (path: ConfigPath, message: string) => {
    const issue = loaded.issue(path, message);
    issues.set(`${issue.path}\n${message}`, issue);
  };
  const inMemory = (store: unknown) => store === 'memory' || (store !== 'redis' && !redis);
  const why = redis ? 'uses the memory store' : 'counts in process memory (no top-level `redis`)';
  const routes = [undefined, ...config.routes];
  routes.forEach((route, i) => {
    for (const resolved of resolvePolicies(config, route, i - 1)) {
      const options = withPolicyDefaults(resolved.definition, resolved.options);
      const name = resolved.definition.name;
      if (name === 'ip-rate-limit' && inMemory(options.store)) {
        add(resolved.path.length > 0 ? [...resolved.path, 'store'] : [], `the per-IP rate limit (ip-rate-limit, on by default) ${why}: each worker would count its own; configure \`redis\` or turn it off for --workers > 1`);
      } else if (name === 'rate-limit') {
        const limits = Array.isArray(options.limits) ? (options.limits as { store?: unknown }[]) : [];
        limits.forEach((limit, j) => {
          if (inMemory(limit.store)) add([...resolved.path, 'limits', j, 'store'], `this rate limit ${why}: each worker would count its own; it needs \`redis\` for --workers > 1`);
        });
      } else if ((name === 'jwt' || name === 'api-key') && options.identity !== true && inMemory(options.revocation)) {
        add([...resolved.path, 'revocation'], `revocations are kept in process memory: one revoked through a worker would not reach the others; it needs \`redis\` for --workers > 1`);
      } else if (name === 'introspection' && !redis) {
        add(resolved.path, 'introspection revocations are kept in process memory (no top-level `redis`): it needs `redis` for --workers > 1');
      }
    }
  });
  if (config.identity?.enabled === true) {
    if (!redis) add(['identity'], 'the identity service keeps its revocations and per-IP login limits in process memory (no top-level `redis`): it needs `redis` for --workers > 1');
    if (config.storage.url.startsWith('sqlite:')) add(['storage', 'url'], 'the identity service on SQLite is for one process: with --workers > 1 it needs PostgreSQL (`postgres://…`)');
  }
  return [...issues.values()];
}
