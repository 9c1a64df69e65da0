import { Type, type Static } from '@sinclair/typebox';
import { Strict } from '../../config/types.js';

export const RequestIdSchema = Strict(
  {
    header: Type.String({
      pattern: '^[a-z0-9-]{1,64}$',
      'x-expected': 'a lowercase header name',
      description: 'Header that carries the request id in both directions.',
      default: 'x-request-id',
    }),
    acceptIncoming: Type.Boolean({
      description: 'Use the id the client (or a proxy in front) sent when it is safe (see `maxLength` and the allowed characters); otherwise generate one.',
      default: true,
    }),
    maxLength: Type.Integer({ minimum: 8, maximum: 256, description: 'Longest incoming id accepted.', default: 128 }),
    echo: Type.Boolean({ description: 'Send the id back in the response header.', default: true }),
    forward: Type.Boolean({ description: 'Send the id to the upstream in the same header.', default: true }),
  },
  { description: 'Request ids: accept a safe incoming id or generate a UUID; echo it and pass it upstream.', default: {} },
);

export type RequestIdOptions = Static<typeof RequestIdSchema>;
