import { stringify } from 'yaml';
import { loadConfigText } from '../../src/config/load.js';
import { ConfigError, formatIssue } from '../../src/config/errors.js';
import { withPolicyDefaults } from '../../src/config/policies.js';
import { builtinPolicies } from '../../src/policies/index.js';

/** A policy's options with its defaults filled in, as `create()` receives them. */
export function optionsOf(name: string, options: Record<string, unknown> = {}): Record<string, unknown> {
  return withPolicyDefaults(builtinPolicies.get(name)!, options);
}

/** The config problems of `defaults.<name>: options` on a one-route config, formatted (none: []). */
export function policyIssues(name: string, options: unknown): string[] {
  const text = stringify({
    upstreams: { a: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    defaults: { [name]: options },
    routes: [{ name: 'r', match: { path: '/r' }, upstream: 'a', public: true }],
  });
  try {
    loadConfigText(text, 'rampart.yaml', '/tmp');
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map(formatIssue);
  }
}
