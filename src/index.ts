/**
 * Rampart as a library: the same engine as the gateway, as a Fastify plugin.
 *
 *   import Fastify from 'fastify';
 *   import { rampart } from 'rampart';
 *   const app = Fastify();
 *   await app.register(rampart, { config: { routes: [...], defaults: {...} } });
 */
export { rampart, type RampartPluginOptions } from './library.js';
export { definePolicy, PHASES, type Phase, type PolicyDefinition, type PolicyHooks, type PolicyContext } from './policies/define.js';
export { RampartError } from './errors/problem.js';
export { errorCodes, type ErrorCode } from './errors/codes.js';
export { loadConfigFile, loadConfigObject } from './config/load.js';
export { ConfigError, ConfigFileError, type ConfigIssue } from './config/errors.js';
export type { RampartConfig } from './config/schema.js';
export { GatewayRuntime } from './gateway/runtime.js';
export type { RequestContext } from './gateway/context.js';
export type { SecurityEvent, Events } from './observability/events.js';
