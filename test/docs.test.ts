import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configurationReference } from '../src/config/docs.js';
import { errorsReference } from '../src/errors/docs.js';
import { errorCodes } from '../src/errors/codes.js';
import { ConfigSchema } from '../src/config/schema.js';
import { builtinPolicies } from '../src/policies/index.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('generated docs', () => {
  it('docs/configuration.md is up to date with the schemas (run `npm run docs:config`)', () => {
    expect(read('docs/configuration.md')).toBe(configurationReference() + '\n');
  });

  it('docs/errors.md is up to date and has one anchor per error code', () => {
    const text = read('docs/errors.md');
    expect(text).toBe(errorsReference() + '\n');
    for (const code of Object.keys(errorCodes)) expect(text).toContain(`<a id="${code.toLowerCase()}"></a>`);
  });

  it('every config field and policy option has a description', () => {
    const missing: string[] = [];
    const walk = (schema: Record<string, unknown>, path: string) => {
      if (typeof schema.description !== 'string' || schema.description === '') missing.push(path);
      for (const [key, child] of Object.entries((schema.properties as Record<string, Record<string, unknown>>) ?? {})) walk(child, `${path}.${key}`);
      if (schema.items) walk(schema.items as Record<string, unknown>, `${path}[]`);
      for (const child of Object.values((schema.patternProperties as Record<string, Record<string, unknown>>) ?? {})) walk(child, `${path}.<name>`);
    };
    walk(ConfigSchema as unknown as Record<string, unknown>, 'config');
    for (const p of builtinPolicies.values()) walk(p.schema as unknown as Record<string, unknown>, p.name);
    expect(missing).toEqual([]);
  });
});
