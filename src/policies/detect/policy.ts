import type { BufferedResponse, RequestContext } from '../../gateway/context.js';
import { definePolicy } from '../define.js';
import { enqueue, pathOf, summarizePaths, walkJson } from '../json-walk.js';
import { DetectSchema } from './schema.js';
import { MIN_SECRET_LENGTH, mask, scan, type Kinds, type SecretKind } from './scanners.js';

export interface Detected {
  readonly paths: string[];
  readonly kinds: Set<SecretKind>;
}

/**
 * Masks, in place, every string value of `root` holding something that looks like a secret.
 * Object keys are not scanned (a key is a name, not data). Undefined when nothing was found.
 */
export function detectSecrets(root: unknown, kinds: Kinds): Detected | undefined {
  let found: Detected | undefined;
  const check = (value: string, index: number, key: string | number): string | undefined => {
    const findings = scan(value, kinds);
    if (findings === undefined) return undefined;
    found ??= { paths: [], kinds: new Set() };
    found.paths.push(pathOf(index, key));
    for (const f of findings) found.kinds.add(f.kind);
    return mask(value, findings);
  };
  walkJson(root, (node, index) => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item = node[i];
        if (typeof item === 'string') {
          if (item.length >= MIN_SECRET_LENGTH) {
            const masked = check(item, index, i);
            if (masked !== undefined) node[i] = masked;
          }
        } else if (item !== null && typeof item === 'object') enqueue(item, index, i);
      }
      return;
    }
    for (const key in node) {
      const value = node[key];
      if (typeof value === 'string') {
        if (value.length >= MIN_SECRET_LENGTH) {
          const masked = check(value, index, key);
          if (masked !== undefined) node[key] = masked;
        }
      } else if (value !== null && typeof value === 'object') enqueue(value, index, key);
    }
  });
  return found;
}

/**
 * Values that look like secrets masked in upstream JSON answers (respond phase, on by default for
 * cards, private keys and cloud keys; JWTs opt in).
 */
export const detectPolicy = definePolicy({
  name: 'detect',
  phase: 'respond',
  priority: 600,
  enabledByDefault: true,
  description: 'Masks values of upstream JSON answers that look like secrets (card numbers, PEM private keys, cloud access keys; JWTs opt in), with a `response_secret_detected` event.',
  schema: DetectSchema,
  create(options, pctx) {
    if (!pctx.proxied) return {};
    const kinds: Kinds = Object.freeze({ ...options.kinds });
    const events = pctx.events;
    if (!kinds.card && !kinds.privateKey && !kinds.cloudKey && !kinds.jwt) return {};
    return {
      responseBody(ctx: RequestContext, response: BufferedResponse) {
        const json = response.json;
        if (typeof json === 'string') {
          // A bare JSON string answer.
          const findings = scan(json, kinds);
          if (findings === undefined) return;
          response.json = mask(json, findings);
          response.changed = true;
          emit(ctx, response, { paths: ['$'], kinds: new Set(findings.map((f) => f.kind)) });
          return;
        }
        const found = detectSecrets(json, kinds);
        if (found === undefined) return;
        response.changed = true;
        emit(ctx, response, found);
      },
    };

    function emit(ctx: RequestContext, response: BufferedResponse, found: Detected): void {
      events.emit({
        type: 'response_secret_detected',
        level: 'WARN',
        description: 'values that look like secrets masked in the upstream answer',
        requestId: ctx.requestId,
        clientIp: ctx.clientIp,
        route: ctx.route.name,
        ...(ctx.consumer !== undefined ? { actor: ctx.consumer.id } : {}),
        data: { filter: 'detect', count: found.paths.length, kinds: [...found.kinds].sort().join(','), paths: summarizePaths(found.paths), status: response.status },
      });
    }
  },
});
