// The quickstart's demo upstream: a small in-memory notes API. It trusts the gateway in front of
// it, as upstreams behind Rampart do: the caller is X-Consumer-Id (set by the gateway from the
// verified token; a client's own X-Consumer-* headers never reach here), and every note belongs
// to its creator.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

/** Starts the notes API; resolves to the listening http.Server. */
export function startNotesApi({ host = '127.0.0.1', port = 3001, anonymousAs } = {}) {
  const notes = new Map();
  const json = (res, status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://notes.local');
    const match = /^\/notes(?:\/([^/]+))?$/.exec(url.pathname);
    if (url.pathname === '/health') return json(res, 200, { status: 'ok' });
    if (match === null) return json(res, 404, { error: 'not found' });
    const id = match[1];
    // `anonymousAs` (the benchmark's public pass-through routes only): callers without an id share one owner.
    const owner = req.headers['x-consumer-id'] ?? anonymousAs;
    if (typeof owner !== 'string' || owner === '') return json(res, 401, { error: 'no caller' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 64 * 1024) req.destroy();
    });
    req.on('end', () => {
      let input;
      if (body !== '') {
        try {
          input = JSON.parse(body);
        } catch {
          return json(res, 400, { error: 'invalid JSON' });
        }
      }
      if (id === undefined) {
        if (req.method === 'GET' || req.method === 'HEAD') return json(res, 200, { notes: [...notes.values()].filter((n) => n.ownerId === owner) });
        if (req.method === 'POST') {
          if (typeof input?.title !== 'string') return json(res, 400, { error: 'title is required' });
          const note = { id: randomUUID(), ownerId: owner, title: input.title, body: String(input.body ?? ''), createdAt: new Date().toISOString() };
          notes.set(note.id, note);
          return json(res, 201, note);
        }
        return json(res, 405, { error: 'method not allowed' });
      }
      const note = notes.get(id);
      if (note === undefined || note.ownerId !== owner) return json(res, 404, { error: 'no such note' });
      if (req.method === 'GET' || req.method === 'HEAD') return json(res, 200, note);
      if (req.method === 'PUT') {
        if (typeof input?.title !== 'string') return json(res, 400, { error: 'title is required' });
        Object.assign(note, { title: input.title, body: String(input.body ?? '') });
        return json(res, 200, note);
      }
      if (req.method === 'DELETE') {
        notes.delete(id);
        res.writeHead(204).end();
        return;
      }
      return json(res, 405, { error: 'method not allowed' });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.NOTES_PORT ?? 3001);
  startNotesApi({ port, anonymousAs: process.env.NOTES_ANONYMOUS_AS }).then(() => console.log(`notes API on http://127.0.0.1:${port}`));
}
