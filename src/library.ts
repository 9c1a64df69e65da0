import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { loadConfigFile, loadConfigObject } from './config/load.js';
import { buildPipeline } from './gateway/pipeline.js';
import { enginePlugin } from './gateway/plugin.js';
import { createEvents, type Events } from './observability/events.js';
import { createLogger } from './observability/logger.js';

export interface RampartPluginOptions {
  /** The config as an object (the same shape as rampart.yaml; routes name no upstream). */
  config?: unknown;
  /** Or a rampart.yaml path. */
  configFile?: string;
  /** Logger for access lines and events; defaults to one built from the config's `log`. */
  logger?: Logger;
}

/**
 * The policy pipeline inside a host Fastify app. Config routes pick which policies apply to the
 * app's own routes; requests no config route matches get the defaults and go on to the app.
 * Config errors throw a ConfigError from `register`.
 */
async function plugin(app: FastifyInstance, options: RampartPluginOptions): Promise<void> {
  if ((options.config === undefined) === (options.configFile === undefined)) {
    throw new TypeError('rampart: pass exactly one of `config` or `configFile`');
  }
  const loaded = options.configFile !== undefined ? loadConfigFile(options.configFile, process.env, 'library') : loadConfigObject(options.config, 'library');
  const logger = options.logger ?? createLogger({ ...loaded.config.log, dir: loaded.dir });
  const events: Events = createEvents(logger);
  const pipeline = buildPipeline(loaded, { logger, events });
  await app.register(enginePlugin, { ref: { current: pipeline }, logger, mode: 'library' });
  app.decorate('rampartEvents', events);
  app.addHook('onClose', async () => {
    await pipeline.close();
  });
}

export const rampart = fp(plugin, { fastify: '5.x', name: 'rampart' });
