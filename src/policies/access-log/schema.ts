import type { Static } from '@sinclair/typebox';
import { Strict, StringEnum } from '../../config/types.js';

export const AccessLogSchema = Strict(
  {
    query: StringEnum(['redact', 'drop', 'keep'] as const, {
      description:
        'How the query string is logged: `redact` censors parameters on the redaction list (token, password, api_key, …), `drop` logs the path only, `keep` logs it as sent (unsafe: secrets end up in logs).',
      default: 'redact',
    }),
    level: StringEnum(['info', 'debug'] as const, { description: 'Log level of access lines.', default: 'info' }),
  },
  { description: 'One JSON line per request.', default: {} },
);

export type AccessLogOptions = Static<typeof AccessLogSchema>;
