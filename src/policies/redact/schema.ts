import { Type, type Static } from '@sinclair/typebox';
import { Strict, StringEnum } from '../../config/types.js';

/** The names removed by default (issue 8): compared case-insensitively, ignoring `_` and `-`. */
export const DEFAULT_REDACTED = ['password', 'passwordHash', 'secret', 'token', 'apiKey', 'ssn', 'creditCard'] as const;

const Name = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '[A-Za-z0-9]',
  'x-expected': 'a field name with at least one letter or digit',
  description: 'A JSON field name, compared case-insensitively and ignoring `_` and `-` (`apiKey` matches `api_key`, `API-KEY` and `ApiKey`).',
});

export const RedactSchema = Strict(
  {
    names: Type.Array(Name, {
      description: 'The field names removed from JSON answers, at any depth (objects inside arrays too). Setting it replaces the built-in list; use `fields` to add to it.',
      default: [...DEFAULT_REDACTED],
    }),
    fields: Type.Array(Name, { description: 'More field names to remove, on top of `names`.', default: [] }),
    mode: StringEnum(['remove', 'mask'] as const, {
      description: '`remove` deletes the field; `mask` keeps it with the value `"[REDACTED]"` (for clients that expect the field to be there).',
      default: 'remove',
    }),
  },
  {
    description: 'Removes sensitive fields (passwords, secrets, tokens, API keys, …) from upstream JSON answers, with a `response_redacted` event naming the JSON paths (never the values).',
    default: {},
  },
);

export type RedactOptions = Static<typeof RedactSchema>;
