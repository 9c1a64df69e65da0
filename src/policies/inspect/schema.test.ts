import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../config/load.js';
import { ConfigError, formatIssue } from '../../config/errors.js';
import { withPolicyDefaults } from '../../config/policies.js';
import { inspectPolicy } from './policy.js';

const config = (inspect: string) => `
upstreams:
  app:
    targets:
      - url: http://127.0.0.1:3001
routes:
  - name: api
    match: { path: /api/* }
    upstream: app
    public: true
    policies:
      inspect: ${inspect}
`;

function issuesOf(inspect: string): string[] {
  try {
    loadConfigText(config(inspect), 'rampart.yaml', '/tmp', {});
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

describe('inspect options', () => {
  it('fills in the defaults: every rule on, the fixed operator list, no header-bound body fields', () => {
    expect(withPolicyDefaults(inspectPolicy, {})).toEqual({
      nosqlOperators: true,
      anyDollarKey: false,
      nulBytes: true,
      crlf: true,
      crlfFields: [],
      pathTraversal: true,
      separators: false,
      maxBody: '1MiB',
    });
    expect(inspectPolicy).toMatchObject({ phase: 'validate', priority: 400, enabledByDefault: true });
  });

  it('accepts each rule switched off and header-bound fields by pointer or by name', () => {
    const { config: loaded } = loadConfigText(config('{ nosqlOperators: false, nulBytes: false, crlf: false, pathTraversal: false, crlfFields: [/redirectUrl, "/a~1b/0/c~0d", filename, "~name"], maxBody: 64KiB }'), 'rampart.yaml', '/tmp', {});
    expect(loaded.routes[0]!.policies.inspect).toMatchObject({ crlfFields: ['/redirectUrl', '/a~1b/0/c~0d', 'filename', '~name'] });
  });

  it('refuses invalid options with a message that says what was expected', () => {
    const pointer = 'expected a JSON pointer such as /user/redirectUrl, or a property name such as filename';
    for (const [options, message] of [
      ['{ nosqlOperator: true }', "routes[0].policies.inspect.nosqlOperator: unknown key 'nosqlOperator' (did you mean 'nosqlOperators'?)"],
      ['{ nosqlOperators: yes }', "routes[0].policies.inspect.nosqlOperators: expected true or false, got 'yes'"],
      ['{ pathTraversal: 1 }', 'routes[0].policies.inspect.pathTraversal: expected true or false, got number 1'],
      ['{ crlfFields: filename }', "routes[0].policies.inspect.crlfFields: expected a list, got 'filename'"],
      ['{ crlfFields: ["/a~2b"] }', `routes[0].policies.inspect.crlfFields[0]: ${pointer}, got '/a~2b'`],
      ['{ crlfFields: ["/a/~"] }', `routes[0].policies.inspect.crlfFields[0]: ${pointer}, got '/a/~'`],
      ['{ crlfFields: [""] }', `routes[0].policies.inspect.crlfFields[0]: ${pointer}, got ''`],
      ['{ crlfFields: [1] }', `routes[0].policies.inspect.crlfFields[0]: ${pointer}, got number 1`],
      [`{ crlfFields: [${Array.from({ length: 101 }, (_, i) => `f${i}`).join(', ')}] }`, 'routes[0].policies.inspect.crlfFields: expected at most 100 items'],
      ['{ maxBody: lots }', "routes[0].policies.inspect.maxBody: expected a size such as 512B, 64KiB, 1MiB or 1GB, got 'lots'"],
      ['true', "routes[0].policies.inspect: expected a mapping of 'inspect' options or false"],
    ] as const) {
      const issues = issuesOf(options);
      expect(issues, options).toHaveLength(1);
      expect(issues[0]!.replace(/^rampart\.yaml:\d+:\d+: /, ''), options).toBe(message);
    }
  });

  it('can be turned off for a route with false', () => {
    const { config: loaded } = loadConfigText(config('false'), 'rampart.yaml', '/tmp', {});
    expect(loaded.routes[0]!.policies.inspect).toBe(false);
  });
});
