/** A raw HTTP exchange for hardening tests: sends `text` on a fresh socket and reads until the server closes it. */
import { request, type Agent, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export function rawHttp(
  port: number,
  text: string,
  timeoutMs = 5000,
): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms (got ${JSON.stringify(out.slice(0, 200))})`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => (out += c.toString('utf8')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const [head = '', body = ''] = out.split('\r\n\r\n', 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body });
    });
    socket.write(text);
  });
}

/**
 * One request through `agent`; resolves once the answer is read (a write error after it is ignored: a 413 may
 * close while the body is still going out).
 */
export function sendThrough(
  agent: Agent,
  port: number,
  opts: { method: string; path: string; body?: Buffer; headers?: Record<string, string> },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: opts.method,
        path: opts.path,
        headers: { 'Content-Type': 'application/json', ...opts.headers },
      },
      (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(opts.body);
  });
}
