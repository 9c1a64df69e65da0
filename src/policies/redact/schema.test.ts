import { describe, expect, it } from 'vitest';
import { optionsOf, policyIssues } from '../../../test/helpers/policy-config.js';

describe('redact schema', () => {
  it('the smallest config is {}: the issue\'s list, nothing extra, remove', () => {
    expect(policyIssues('redact', {})).toEqual([]);
    expect(optionsOf('redact')).toEqual({ names: ['password', 'passwordHash', 'secret', 'token', 'apiKey', 'ssn', 'creditCard'], fields: [], mode: 'remove' });
  });

  it('refuses names without a letter or digit, an unknown mode and unknown keys', () => {
    expect(policyIssues('redact', { fields: ['_-'] })).toEqual(["rampart.yaml:8:9: defaults.redact.fields[0]: expected a field name with at least one letter or digit, got '_-'"]);
    expect(policyIssues('redact', { fields: [''] })[0]).toContain('defaults.redact.fields[0]');
    expect(policyIssues('redact', { mode: 'drop' })).toEqual(['rampart.yaml:7:11: defaults.redact.mode: expected one of "remove", "mask", got \'drop\'']);
    expect(policyIssues('redact', { field: ['x'] })[0]).toContain("unknown key 'field'");
    expect(policyIssues('redact', { names: 'password' })[0]).toContain('defaults.redact.names');
  });
});
