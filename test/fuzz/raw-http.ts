import { connect } from 'node:net';

/** One response read off a raw connection. */
export interface RawResponse {
  status: number;
  headers: Record<string, string[]>;
  body: Buffer<ArrayBufferLike>;
}

/**
 * Writes `request` (which asks for `Connection: close`) on a new connection to 127.0.0.1:`port`
 * and resolves with everything the server sent before closing — or rejects past `timeoutMs` (a
 * hang is a failure). The client side is not half-closed: the gateway reads that as a client
 * that went away, and rightly drops the exchange.
 */
export function exchange(port: number, request: Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    // The server may reset a connection it refused while we are still writing: what it sent
    // before that is the answer.
    socket.on('error', () => undefined);
  });
}

/**
 * Parses the HTTP/1.1 responses in `bytes` (interim 1xx ones included), strictly: a status line,
 * header lines, then a body framed by chunked encoding, Content-Length, or the end of the
 * connection. `headOnly`: the request was a HEAD, so the first final answer has no body whatever
 * its headers say (a later one, to what followed on the connection, has). Throws on anything
 * malformed.
 */
export function parseResponses(bytes: Buffer, headOnly: boolean): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at);
    if (end === -1) throw new Error(`truncated response head: ${JSON.stringify(bytes.subarray(at, at + 200).toString('latin1'))}`);
    const lines = bytes.subarray(at, end).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*$/.exec(lines[0]!);
    if (statusLine === null) throw new Error(`malformed status line: ${JSON.stringify(lines[0])}`);
    const status = Number(statusLine[1]);
    const headers: Record<string, string[]> = {};
    for (const line of lines.slice(1)) {
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
      if (m === null) throw new Error(`malformed header line: ${JSON.stringify(line)}`);
      (headers[m[1]!.toLowerCase()] ??= []).push(m[2]!);
    }
    at = end + 4;
    if (status < 200) {
      out.push({ status, headers, body: Buffer.alloc(0) });
      continue;
    }
    let body: Buffer = Buffer.alloc(0);
    const length = headers['content-length'];
    const chunked = headers['transfer-encoding']?.join(',').toLowerCase().includes('chunked') === true;
    const head = headOnly && !out.some((r) => r.status >= 200);
    if (head || status === 204 || status === 304) {
      // No body; but an answer written before the request was parsed (a parser error) cannot
      // know it was a HEAD, and carries its body before closing.
      if (head && length?.length === 1 && bytes.length - at === Number(length[0]) && headers.connection?.[0] === 'close') at = bytes.length;
    } else if (chunked) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', at);
        if (lineEnd === -1) throw new Error('truncated chunk size');
        const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
        if (!Number.isInteger(size) || size < 0) throw new Error('malformed chunk size');
        at = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = bytes.indexOf('\r\n', at);
          at = trailerEnd === -1 ? bytes.length : trailerEnd + 2;
          break;
        }
        parts.push(bytes.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (length !== undefined) {
      if (length.length !== 1 || !/^\d+$/.test(length[0]!)) throw new Error(`malformed Content-Length: ${JSON.stringify(length)}`);
      const n = Number(length[0]);
      if (at + n > bytes.length) throw new Error(`body shorter than its Content-Length (${bytes.length - at} < ${n})`);
      body = bytes.subarray(at, at + n);
      at += n;
    } else {
      body = bytes.subarray(at);
      at = bytes.length;
    }
    out.push({ status, headers, body });
  }
  return out;
}
