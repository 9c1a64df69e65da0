// Regenerates docs/configuration.md and docs/errors.md from the schemas and the error table.
import { writeFileSync } from 'node:fs';
import { configurationReference } from '../src/config/docs.js';
import { errorsReference } from '../src/errors/docs.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationReference() + '\n');
writeFileSync(new URL('../docs/errors.md', import.meta.url), errorsReference() + '\n');
console.log('wrote docs/configuration.md and docs/errors.md');
