import { describe, expect, it } from 'vitest';
import { optionsOf, policyIssues } from '../../../test/helpers/policy-config.js';

describe('detect schema', () => {
  it('the smallest config is {}: cards, private keys and cloud keys on, JWTs off', () => {
    expect(policyIssues('detect', {})).toEqual([]);
    expect(optionsOf('detect')).toEqual({ kinds: { card: true, privateKey: true, cloudKey: true, jwt: false } });
    expect(optionsOf('detect', { kinds: { jwt: true } })).toEqual({ kinds: { card: true, privateKey: true, cloudKey: true, jwt: true } });
  });

  it('refuses unknown kinds and non-booleans', () => {
    expect(policyIssues('detect', { kinds: { iban: true } })[0]).toContain("defaults.detect.kinds.iban: unknown key 'iban'");
    expect(policyIssues('detect', { kinds: { card: 'yes' } })[0]).toContain('defaults.detect.kinds.card');
    expect(policyIssues('detect', { mask: true })[0]).toContain("unknown key 'mask'");
  });
});
