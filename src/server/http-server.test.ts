import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BoxError } from '../errors/box-error.js';
import { HttpServer, type HttpServerOptions } from './http-server.js';
import { rawHttp, sendThrough } from '../../test/helpers/raw-http.js';

const TOKEN = 'unit-test-token-0123456789';
const RELAY = '/v1/sessions/%E0%A4%A/processes/x/ws';
const MiB = 1024 * 1024;

let server: HttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Unexpected {
  where: string;
  err: unknown;
}

/** A real HttpServer on port 0 with a few routes, a relay-shaped upgrade route, and the errors it reports. */
async function startServer(
  opts: Partial<HttpServerOptions> = {},
): Promise<{ http: HttpServer; unexpected: Unexpected[] }> {
  const unexpected: Unexpected[] = [];
  const http = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    maxPayload: 16 * MiB + 64 * 1024,
    onUnexpectedError: (err, where) => unexpected.push({ err, where }),
    ...opts,
  });
  server = http;
  http.route('GET', '/healthz', () => ({ ok: true }), { public: true });
  http.route('GET', '/v1/servers/{name}', ({ params }) => ({ name: params.name }));
  http.route('POST', '/v1/echo', ({ body }) => ({ bytes: JSON.stringify(body ?? null).length }));
  http.route('POST', '/v1/rpc', ({ body }) => ({ got: body }), { jsonRpc: true });
  http.route('GET', '/v1/bug', () => {
    throw new TypeError('a programming error');
  });
  http.route('GET', '/v1/slow', async () => {
    await new Promise((r) => setTimeout(r, 900));
    return { slow: true };
  });
  http.route('GET', '/v1/stream', async ({ res }) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    for (let i = 0; i < 6; i++) {
      res.write(`tick ${i}\n`);
      await new Promise((r) => setTimeout(r, 150));
    }
    res.end('done\n');
  });
  http.upgrade(
    '/v1/sessions/{session}/processes/{process}/ws',
    'mcp',
    (_req, params) => {
      if (params.process === 'check-bug') throw new TypeError('a bug in the check');
    },
    (ws, _req, params) => {
      if (params.process === 'handler-bug') throw new TypeError('a bug in the handler');
      ws.on('message', (data: Buffer) => ws.send(data.toString('utf8')));
    },
  );
  await http.listen();
  return { http, unexpected };
}

const raw = rawHttp;

const get = (path: string, headers: Record<string, string> = {}, port = server?.port ?? 0): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
const auth = { Authorization: `Bearer ${TOKEN}` };
const upgradeHeaders = {
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Protocol': 'mcp',
};
const upgrade = (path: string, headers: Record<string, string>, port: number): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${Object.entries({ ...upgradeHeaders, ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

async function healthz(port: number): Promise<number> {
  return (await raw(port, get('/healthz', {}, port))).status;
}

describe('HttpServer: malformed paths', () => {
  it(
    'a relay upgrade with a malformed percent-escape is a 400 envelope (token checked first), ' +
      'and the server keeps serving',
    async () => {
      const { http } = await startServer();
      const withToken = await raw(http.port, upgrade(RELAY, auth, http.port));
      expect(withToken.status).toBe(400);
      expect(JSON.parse(withToken.body)).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
      expect((await raw(http.port, upgrade(RELAY, {}, http.port))).status).toBe(401);
      expect(await healthz(http.port)).toBe(200);
    },
  );

  it('a plain route with a malformed percent-escape is a 400 envelope with a token, 401 without one', async () => {
    const { http } = await startServer();
    const withToken = await raw(http.port, get('/v1/servers/%E0%A4%A', auth));
    expect(withToken.status).toBe(400);
    expect(JSON.parse(withToken.body)).toMatchObject({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('percent') },
    });
    expect((await raw(http.port, get('/v1/servers/%E0%A4%A'))).status).toBe(401);
    expect((await raw(http.port, get('/v1/servers/ok%20name', auth))).body).toContain('"ok name"');
  });

  it('an unparseable request target is a 400 (401 without a token), on plain requests and upgrades', async () => {
    const { http } = await startServer();
    expect((await raw(http.port, get('//[', auth))).status).toBe(400);
    expect((await raw(http.port, get('//['))).status).toBe(401);
    expect((await raw(http.port, upgrade('//[', auth, http.port))).status).toBe(400);
    expect(await healthz(http.port)).toBe(200);
  });
});

describe("HttpServer: requests Node's parser refuses", () => {
  /** The status, headers (lower-cased names) and parsed JSON body of one raw answer. */
  function answer(text: { status: number; head: string; body: string }): {
    status: number;
    headers: Record<string, string>;
    json: unknown;
  } {
    const headers = Object.fromEntries(
      text.head
        .split('\r\n')
        .slice(1)
        .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    return { status: text.status, headers, json: JSON.parse(text.body) as unknown };
  }

  it.each([
    { name: 'a malformed request line', request: 'GARBAGE\r\n\r\n' },
    { name: 'a request line with a bad version', request: 'GET /healthz HTTX/1.1\r\nHost: x\r\n\r\n' },
    { name: 'a header line without a colon', request: 'GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n' },
  ])('$name is a 400 error envelope with Connection: close, and the server keeps serving', async ({ request }) => {
    const { http, unexpected } = await startServer();
    const got = answer(await raw(http.port, request));
    expect(got.status).toBe(400);
    expect(got.headers['content-type']).toMatch(/^application\/json/);
    expect(got.headers.connection).toBe('close');
    expect(got.json).toEqual({
      error: { code: 'BAD_REQUEST', message: expect.stringMatching(/^The request is not valid HTTP \(HPE_\w+\)$/) },
    });
    expect(unexpected).toEqual([]);
    expect(await healthz(http.port)).toBe(200);
  });

  it('headers over the size limit are a 431 error envelope', async () => {
    const { http } = await startServer();
    const got = answer(await raw(http.port, get('/healthz', { 'X-Big': 'a'.repeat(32 * 1024) })));
    expect(got.status).toBe(431);
    expect(got.headers.connection).toBe('close');
    expect(got.json).toMatchObject({ error: { code: 'HEADERS_TOO_LARGE', message: expect.any(String) } });
    expect(await healthz(http.port)).toBe(200);
  });

  it(
    'a later request on a kept-alive connection that stalls in its headers gets a 408 error envelope after the ' +
      'answer to the first',
    async () => {
      const { http } = await startServer({ headersTimeoutMs: 400 });
      const socket = connect(http.port, '127.0.0.1');
      socket.on('error', () => undefined);
      let whole = '';
      socket.on('data', (c: Buffer) => (whole += c.toString('utf8')));
      socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${http.port}\r\n\r\nGET /healthz HTTP/1.1\r\nX-Stalled: `);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`the server did not close the stalled connection within 3 s (got ${JSON.stringify(whole)})`),
            ),
          3000,
        );
        socket.once('close', () => resolve(clearTimeout(timer)));
      });
      expect(whole).toMatch(/^HTTP\/1\.1 200 /);
      const second = whole.slice(whole.indexOf('HTTP/1.1', 1));
      const [head = '', body = ''] = second.split('\r\n\r\n');
      const got = answer({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body });
      expect(got.status).toBe(408);
      expect(got.headers.connection).toBe('close');
      expect(got.json).toMatchObject({ error: { code: 'REQUEST_TIMEOUT' } });
    },
  );
});

describe('HttpServer: unexpected errors in handlers', () => {
  it('a programming error in a route handler is answered 500 and reported, not swallowed', async () => {
    const { http, unexpected } = await startServer();
    const res = await raw(http.port, get('/v1/bug', auth));
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'INTERNAL_ERROR' } });
    expect(res.body).not.toContain('a programming error');
    expect(unexpected).toEqual([
      { where: 'request', err: expect.objectContaining({ message: 'a programming error' }) },
    ]);
  });

  it('a BoxError from a handler is an answer, not an unexpected error', async () => {
    const { http, unexpected } = await startServer();
    http.route('GET', '/v1/missing', () => {
      throw new BoxError('NOT_FOUND', 'config', 'no such thing');
    });
    expect((await raw(http.port, get('/v1/missing', auth))).status).toBe(404);
    expect(unexpected).toEqual([]);
  });

  it('a throw in an upgrade check or a WebSocket handler is reported, and the server keeps serving', async () => {
    const { http, unexpected } = await startServer();
    expect((await raw(http.port, upgrade('/v1/sessions/s/processes/check-bug/ws', auth, http.port))).status).toBe(500);
    const ws = new WebSocket(`ws://127.0.0.1:${http.port}/v1/sessions/s/processes/handler-bug/ws`, 'mcp', {
      headers: auth,
    });
    ws.on('error', () => undefined);
    const code = await new Promise<number>((resolve) => ws.on('close', resolve));
    expect(code).toBe(1006);
    expect(unexpected.map((u) => [u.where, (u.err as Error).message])).toEqual([
      ['upgrade', 'a bug in the check'],
      ['upgrade', 'a bug in the handler'],
    ]);
    expect(await healthz(http.port)).toBe(200);
  });
});

describe('HttpServer: timeouts', () => {
  it('closes a connection that sends half a request line and nothing more, within the headers timeout', async () => {
    const { http } = await startServer({ headersTimeoutMs: 400 });
    const socket = connect(http.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    const started = performance.now();
    socket.write('GET /heal');
    expectTimeoutAnswer(await closedByServer(socket, 'the slow connection'));
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(1500);
  });

  it('closes a connection that drips its headers a byte at a time, within the headers timeout', async () => {
    const { http } = await startServer({ headersTimeoutMs: 400 });
    const socket = connect(http.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    const started = performance.now();
    const drip = setInterval(() => socket.writable && socket.write('X'), 50);
    socket.write('GET /healthz HTTP/1.1\r\nX-Slow: ');
    try {
      expectTimeoutAnswer(await closedByServer(socket, 'the dripping connection'));
    } finally {
      clearInterval(drip);
    }
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('closes a connection that sends nothing at all, within the headers timeout', async () => {
    const { http } = await startServer({ headersTimeoutMs: 400 });
    const socket = connect(http.port, '127.0.0.1');
    socket.on('error', () => undefined);
    expectTimeoutAnswer(await closedByServer(socket, 'the idle connection'));
  });

  it(
    'the request timeout covers receiving the request ' + 'only: slow answers, streams and WebSockets outlive it',
    async () => {
      const { http } = await startServer({ headersTimeoutMs: 200, requestTimeoutMs: 300 });
      const slow = await raw(http.port, get('/v1/slow', auth));
      expect(slow.status).toBe(200);
      const stream = await raw(http.port, get('/v1/stream', auth));
      expect(stream.body).toContain('done');
      const ws = new WebSocket(`ws://127.0.0.1:${http.port}/v1/sessions/s/processes/p/ws`, 'mcp', { headers: auth });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await new Promise((r) => setTimeout(r, 900));
      ws.send('still here');
      expect(
        await new Promise<string>((resolve, reject) =>
          ws
            .once('message', (d: Buffer) => resolve(d.toString('utf8')))
            .once('close', () => reject(new Error('closed'))),
        ),
      ).toBe('still here');
      ws.close();
    },
  );
});

/**
 * Reads what the server sends until it closes the connection. The reading matters: two deadlines
 * race here (ours destroys the socket, Node's own headers check answers 408 and ends it), and a
 * client that never reads an answer it was sent never sees the end of the stream, so never 'close'.
 */
async function closedByServer(socket: Socket, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not close ${what} within 3 s`)), 3000);
    socket.once('close', () => resolve(clearTimeout(timer)));
  });
  return Buffer.concat(chunks).toString('latin1');
}

/** Either deadline may win: the connection is closed with nothing sent, or with a 408 envelope. */
function expectTimeoutAnswer(received: string): void {
  if (received === '') return;
  expect(received).toMatch(/^HTTP\/1\.1 408 /);
  expect(received).toContain('"code":"REQUEST_TIMEOUT"');
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(
  agent: Agent,
  port: number,
  opts: { method: string; path: string; body?: Buffer; headers?: Record<string, string> },
): Promise<Answer> {
  return sendThrough(agent, port, { ...opts, headers: { ...auth, ...opts.headers } });
}

const jsonBody = (bytes: number): Buffer => Buffer.from(JSON.stringify({ pad: 'x'.repeat(bytes - 10) }));

describe('HttpServer: request bodies', () => {
  it('a client that goes away in the middle of its body is not reported as an unexpected error', async () => {
    const { http, unexpected } = await startServer();
    const socket = connect(http.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${http.port}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`,
    );
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(unexpected).toEqual([]);
    expect(await healthz(http.port)).toBe(200);
  });

  it(
    'a 20 MiB body gets a 413 envelope with Connection: close, and the next request through ' +
      'the same keep-alive agent succeeds',
    async () => {
      const { http } = await startServer({ maxBodyBytes: MiB });
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const big = await send(agent, http.port, { method: 'POST', path: '/v1/echo', body: jsonBody(20 * MiB) });
        expect(big.status).toBe(413);
        expect(big.headers.connection).toBe('close');
        expect(JSON.parse(big.body)).toMatchObject({
          error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringContaining(String(MiB)) },
        });
        const next = await send(agent, http.port, { method: 'POST', path: '/v1/echo', body: jsonBody(1000) });
        expect(next.status).toBe(200);
      } finally {
        agent.destroy();
      }
    },
  );

  it(
    'a client still writing a chunked body when the 413 ' + 'is sent receives it (no EPIPE/ECONNRESET), every time',
    async () => {
      const { http } = await startServer({ maxBodyBytes: MiB });
      const answers: (number | string)[] = [];
      for (let trial = 0; trial < 10; trial++) {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        answers.push(
          await new Promise<number | string>((resolve) => {
            const req = request(
              {
                agent,
                host: '127.0.0.1',
                port: http.port,
                method: 'POST',
                path: '/v1/echo',
                headers: { ...auth, 'Transfer-Encoding': 'chunked' },
              },
              (res) => {
                res.resume().on('end', () => resolve(res.statusCode ?? 0));
              },
            );
            req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
            let chunks = 0;
            const writeNext = (): void => {
              if (chunks++ === 20) return void req.end();
              req.write(Buffer.alloc(MiB, 97));
              setTimeout(writeNext, 5);
            };
            writeNext();
          }),
        );
        agent.destroy();
      }
      expect(answers).toEqual(Array(10).fill(413));
    },
  );

  it('a body just over the limit, sent in full, is a 413 too, and the agent goes on', async () => {
    const { http } = await startServer({ maxBodyBytes: MiB });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(
        (await send(agent, http.port, { method: 'POST', path: '/v1/echo', body: jsonBody(MiB + 100) })).status,
      ).toBe(413);
      expect((await send(agent, http.port, { method: 'GET', path: '/v1/servers/a' })).status).toBe(200);
      expect((await send(agent, http.port, { method: 'GET', path: '/v1/servers/b' })).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('by default the limit is the relay message size (maxPayload): a 2 MiB tool call body is accepted', async () => {
    const { http } = await startServer();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await send(agent, http.port, { method: 'POST', path: '/v1/echo', body: jsonBody(2 * MiB) });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ bytes: 2 * MiB });
    } finally {
      agent.destroy();
    }
  });
});

describe('a body that is not JSON', () => {
  const post = async (path: string, body: string): Promise<{ status: number; json: unknown }> => {
    const { http } = await startServer();
    const res = await fetch(`${http.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body,
    });
    return { status: res.status, json: await res.json() };
  };

  it('is a 400 INVALID_ARGUMENT envelope on a REST route', async () => {
    expect(await post('/v1/echo', '{"a": ')).toEqual({
      status: 400,
      json: {
        error: {
          code: 'INVALID_ARGUMENT',
          message: 'The request body is not valid JSON',
          phase: 'request',
          details: {},
        },
      },
    });
  });

  it('is a 400 JSON-RPC parse error (-32700, id null) on a JSON-RPC route; valid JSON reaches it', async () => {
    expect(await post('/v1/rpc', '{"jsonrpc": "2.0", ')).toMatchObject({
      status: 400,
      json: { jsonrpc: '2.0', id: null, error: { code: -32700 } },
    });
    expect(await post('/v1/rpc', '{"jsonrpc": "2.0"}')).toEqual({ status: 200, json: { got: { jsonrpc: '2.0' } } });
  });
});
