import { describe, expect, it } from 'vitest';
import { optionsOf, policyIssues } from '../../../test/helpers/policy-config.js';

describe('upstream-errors schema', () => {
  it('the smallest config is {}: 5xx replaced, 4xx passed, 2 KiB of the body logged', () => {
    expect(policyIssues('upstream-errors', {})).toEqual([]);
    expect(optionsOf('upstream-errors')).toEqual({ serverErrors: 'replace', clientErrors: 'pass', logBody: '2KiB' });
  });

  it('refuses unknown values and keys', () => {
    expect(policyIssues('upstream-errors', { serverErrors: 'hide' })[0]).toContain('defaults.upstream-errors.serverErrors: expected one of "replace", "pass"');
    expect(policyIssues('upstream-errors', { clientErrors: true })[0]).toContain('defaults.upstream-errors.clientErrors');
    expect(policyIssues('upstream-errors', { logBody: '2 KiB' })[0]).toContain('expected a size such as');
    expect(policyIssues('upstream-errors', { statuses: [500] })[0]).toContain("unknown key 'statuses'");
  });
});
