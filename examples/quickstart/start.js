// `npm start`: the demo notes API and the gateway in one process, on the quickstart config.
import { fileURLToPath } from 'node:url';
import { startNotesApi } from './notes-api.js';

const config = fileURLToPath(new URL('./rampart.yaml', import.meta.url));
const port = Number(process.env.NOTES_PORT ?? 3001);

try {
  await startNotesApi({ port });
} catch (error) {
  console.error(`rampart quickstart: cannot start the demo notes API on 127.0.0.1:${port}: ${error.code === 'EADDRINUSE' ? 'address already in use' : error.message}`);
  process.exit(1);
}
console.error(`demo notes API on http://127.0.0.1:${port} (the upstream); the gateway follows`);
const { main } = await import('../../dist/cli/main.js');
const code = await main(['start', '-c', config]);
if (code !== 0) process.exit(code);
