import { Type, type Static } from '@sinclair/typebox';
import { Strict } from '../../config/types.js';

export const DetectSchema = Strict(
  {
    kinds: Strict(
      {
        card: Type.Boolean({ description: 'Payment card numbers: 13–19 digits (single spaces or dashes between groups allowed) with a major network\'s first digits and a valid Luhn checksum. Masked to the last four digits (`**** **** **** 1111`).', default: true }),
        privateKey: Type.Boolean({ description: 'PEM private keys (`-----BEGIN … PRIVATE KEY-----` through its END line). Replaced by `[REDACTED:privateKey]`.', default: true }),
        cloudKey: Type.Boolean({ description: 'Cloud and SaaS access keys by their documented prefixes: AWS `AKIA`/`ASIA`, GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, Slack `xoxb-`/`xoxa-`/`xoxp-`/`xoxr-`/`xoxs-`, Stripe `sk_live_`/`rk_live_`, Google `AIza`. Replaced by `[REDACTED:cloudKey]`.', default: true }),
        jwt: Type.Boolean({ description: 'JSON Web Tokens (three base64url segments whose header is JSON with `alg`). Off by default: APIs legitimately return tokens. Replaced by `[REDACTED:jwt]`.', default: false }),
      },
      { description: 'Which kinds of secrets are looked for.', default: {} },
    ),
  },
  {
    description: 'Masks string values of upstream JSON answers that look like secrets (card numbers, private keys, cloud access keys, optionally JWTs), with a `response_secret_detected` event.',
    default: {},
  },
);

export type DetectOptions = Static<typeof DetectSchema>;
