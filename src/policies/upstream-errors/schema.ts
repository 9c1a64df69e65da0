import { type Static } from '@sinclair/typebox';
import { Size, Strict, StringEnum } from '../../config/types.js';

export const UpstreamErrorsSchema = Strict(
  {
    serverErrors: StringEnum(['replace', 'pass'] as const, {
      description: 'An upstream 5xx: `replace` answers 502 `RMP_UPSTREAM_ERROR` (problem+json) with none of the upstream\'s body or headers; `pass` forwards it as it is (stack traces, SQL errors and all).',
      default: 'replace',
    }),
    clientErrors: StringEnum(['pass', 'replace'] as const, {
      description: 'An upstream 4xx: `pass` forwards it (its body still goes through the response filters); `replace` keeps the status but answers problem+json `RMP_UPSTREAM_CLIENT_ERROR` instead of the upstream\'s body and headers.',
      default: 'pass',
    }),
    logBody: Size({ description: 'How much of a replaced answer\'s body goes to the gateway\'s log (warn level, with the request id and the upstream\'s status), for operators; `0B` logs none. Never sent to the client.', default: '2KiB' }),
  },
  { description: 'Replaces upstream error answers with a problem+json of the gateway\'s own, so no stack trace, SQL error or internal detail reaches a client.', default: {} },
);

export type UpstreamErrorsOptions = Static<typeof UpstreamErrorsSchema>;
