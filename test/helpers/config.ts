import { ConfigError, formatIssue } from '../../src/config/errors.js';
import { loadConfigText } from '../../src/config/load.js';

/** The located errors (`file:line:column: path: message`) of a config text that must be refused; throws if it loads. */
export function configIssues(text: string, env: NodeJS.ProcessEnv = {}, dir = '/tmp'): string[] {
  try {
    loadConfigText(text, 'rampart.yaml', dir, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('expected the config to be refused');
}
