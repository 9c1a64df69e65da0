import type { PolicyDefinition } from './define.js';
import { requestIdPolicy } from './request-id/policy.js';
import { accessLogPolicy } from './access-log/policy.js';
import { headersPolicy } from './headers/policy.js';
import { corsPolicy } from './cors/policy.js';
import { ipFilterPolicy } from './ip-filter/policy.js';
import { limitsPolicy } from './limits/policy.js';
import { ipRateLimitPolicy } from './ip-rate-limit/policy.js';
import { rateLimitPolicy } from './rate-limit/policy.js';
import { concurrencyPolicy } from './concurrency/policy.js';
import { jwtPolicy } from './jwt/policy.js';
import { authorizePolicy } from './authorize/policy.js';
import { apiKeyPolicy } from './api-key/policy.js';
import { introspectionPolicy } from './introspection/policy.js';
import { consumerTokenPolicy } from './consumer-token/policy.js';
import { openApiPolicy } from './openapi/policy.js';
import { redactPolicy } from './redact/policy.js';
import { detectPolicy } from './detect/policy.js';
import { upstreamErrorsPolicy } from './upstream-errors/policy.js';
import { inspectPolicy } from './inspect/policy.js';
import { versioningPolicy } from './versioning/policy.js';

/** Every policy the config can name, by name. */
export const builtinPolicies: ReadonlyMap<string, PolicyDefinition> = new Map(
  ([requestIdPolicy, concurrencyPolicy, limitsPolicy, ipFilterPolicy, corsPolicy, ipRateLimitPolicy, jwtPolicy, apiKeyPolicy, introspectionPolicy, rateLimitPolicy, authorizePolicy, openApiPolicy, consumerTokenPolicy, inspectPolicy, versioningPolicy, headersPolicy, upstreamErrorsPolicy, detectPolicy, redactPolicy, accessLogPolicy] as PolicyDefinition[]).map((p) => [p.name, p]),
);
