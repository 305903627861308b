/**
 * The HTTP server of mcp-box: a small route table for JSON endpoints and WebSocket upgrades, with
 * the request guard applied to everything (except routes marked public, such as /healthz) before
 * any handler — and, for upgrades, before the WebSocket handshake. Errors are JSON envelopes
 * `{ "error": { "code", "message", "phase"?, "details"? } }`.
 *
 * Nothing a client sends may knock it over: a malformed path or request target is a 400 (after the
 * token check), a throw in any handler is answered (500) and reported through `onUnexpectedError`,
 * slow or idle clients are cut by the headers timeout, and an oversized body is a 413 that reaches
 * the client before the connection closes. Node's `requestTimeout` covers receiving the request
 * (headers and body) only, so slow answers, SSE streams and upgraded WebSockets are never cut by it.
 * What Node's own parser refuses (a malformed request line, headers over the size limit, a request
 * that timed out) is answered in the same envelope too: 400, 431 or 408, then the connection closes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { DEFAULT_HEADERS_TIMEOUT_MS } from '../defaults.js';
import { BoxError, isBoxError } from '../errors/box-error.js';
import { once } from '../util/once.js';
import { checkOriginAndHost, checkToken, type GuardOptions } from './request-guard.js';
import { httpStatusOf } from './http-status.js';

export type Params = Record<string, string>;

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Params;
  query: URLSearchParams;
  /** The parsed JSON body (POST/PUT), or undefined. */
  body: unknown;
}

export type RouteHandler = (ctx: RouteContext) => Promise<unknown> | unknown;
export type UpgradeHandler = (ws: WebSocket, req: IncomingMessage, params: Params) => void;
/** Runs before the handshake; a BoxError refuses the upgrade with its HTTP status. */
export type UpgradeCheck = (req: IncomingMessage, params: Params) => void;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: RouteHandler;
  public: boolean;
  /** A JSON-RPC endpoint (MCP over HTTP): a body that is not JSON is answered with a JSON-RPC parse error. */
  jsonRpc: boolean;
}

/** `public`: no API token (e.g. /healthz). `jsonRpc`: see Route. */
export interface RouteOptions {
  public?: boolean;
  jsonRpc?: boolean;
}

interface UpgradeRoute {
  pattern: RegExp;
  names: string[];
  check: UpgradeCheck;
  handler: UpgradeHandler;
  protocol: string;
  /** No API token: the route checks a credential of its own (a relay capability). */
  public: boolean;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  token: string;
  allowedHosts?: string[];
  /** Largest WebSocket message accepted from clients. */
  maxPayload: number;
  /** Largest request body (default `maxPayload`: a REST tool call carries what the relay carries). */
  maxBodyBytes?: number;
  /** Time a client has to send its request line and headers (default HEADERS_TIMEOUT_MS). */
  headersTimeoutMs?: number;
  /** Time a client has to send its whole request, body included (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** Idle time of a kept-alive connection between requests (default KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs?: number;
  /** A handler threw something that is not a BoxError (a bug); the client got a 500 or a closed socket. */
  onUnexpectedError?: (err: unknown, where: 'request' | 'upgrade') => void;
}

export const HEADERS_TIMEOUT_MS = DEFAULT_HEADERS_TIMEOUT_MS;
export const REQUEST_TIMEOUT_MS = 300_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** After a 413, the rest of the body is read and dropped (up to this much) so the answer is not lost to a reset. */
const DISCARD_AFTER_REFUSAL_BYTES = 64 * 1024 * 1024;
const DISCARD_AFTER_REFUSAL_MS = 10_000;
/** After answering a request Node could not parse, the socket is destroyed once the client closed, or after this. */
const CLIENT_ERROR_LINGER_MS = 1_000;

type Target = { pathname: string; query: URLSearchParams } | null;

export class HttpServer {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly routes: Route[] = [];
  private readonly upgrades: UpgradeRoute[] = [];
  private readonly guard: GuardOptions;
  private readonly opts: HttpServerOptions;

  constructor(opts: HttpServerOptions) {
    this.opts = opts;
    this.guard = {
      token: opts.token,
      ...(opts.allowedHosts === undefined ? {} : { allowedHosts: opts.allowedHosts }),
      port: () => this.port,
    };
    const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
    const requestTimeout = Math.max(opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, headersTimeout);
    this.server = createServer(
      {
        headersTimeout,
        requestTimeout,
        keepAliveTimeout: opts.keepAliveTimeoutMs ?? KEEP_ALIVE_TIMEOUT_MS,
        // Both timeouts are only enforced when this check runs (Node's default: every 30 s).
        connectionsCheckingInterval: Math.min(Math.max(Math.floor(headersTimeout / 8), 25), 2_000),
      },
      (req, res) => {
        this.onRequest(req, res).catch((err: unknown) => {
          this.reportUnexpected(err, 'request');
          res.destroy();
        });
      },
    );
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxPayload,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has('mcp') ? 'mcp' : false),
    });
    this.server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      try {
        this.onUpgrade(req, socket, head);
      } catch (err) {
        this.reportUnexpected(err, 'upgrade');
        socket.destroy();
      }
    });
    // A connection that sends nothing at all never starts a request, so the headers timeout
    // alone would not close it: the socket's idle timeout does (cleared once a request starts
    // so answers that take long are not cut; Node re-arms keepAliveTimeout between requests).
    // A plain timer until the first request starts, not the socket's idle timeout: with the idle
    // timeout alone a half-sent first request was seen left open (about 1 run in 10).
    const firstRequestDeadlines = new WeakMap<Socket, NodeJS.Timeout>();
    this.server.on('connection', (socket: Socket) => {
      const timer = setTimeout(() => socket.destroy(), headersTimeout);
      timer.unref();
      firstRequestDeadlines.set(socket, timer);
      socket.once('close', () => clearTimeout(timer));
    });
    const started = (req: IncomingMessage): void => clearTimeout(firstRequestDeadlines.get(req.socket));
    this.server.on('request', started);
    this.server.on('upgrade', started);
    // Without a listener Node answers its parser's errors itself, in plain text. The response of the
    // latest request on a socket tells whether an answer is already going out there.
    const responses = new WeakMap<Duplex, ServerResponse>();
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => responses.set(req.socket, res));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      onClientError(err, socket, responses.get(socket)),
    );
  }

  route(method: string, path: string, handler: RouteHandler, opts: RouteOptions = {}): this {
    const { pattern, names } = compilePath(path);
    this.routes.push({ method, pattern, names, handler, public: opts.public === true, jsonRpc: opts.jsonRpc === true });
    return this;
  }

  upgrade(
    path: string,
    protocol: string,
    check: UpgradeCheck,
    handler: UpgradeHandler,
    opts: { public?: boolean } = {},
  ): this {
    const { pattern, names } = compilePath(path);
    this.upgrades.push({ pattern, names, check, handler, protocol, public: opts.public === true });
    return this;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? this.opts.port;
  }

  /** Base URL for clients (http://host:port). */
  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${this.port}`;
  }

  readonly close = once(async (): Promise<void> => {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  });

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseTarget(req.url);
    const method = req.method ?? 'GET';
    try {
      const found = target === null ? undefined : this.match(method, target.pathname);
      const refusal =
        checkOriginAndHost(req, this.guard) ?? (found?.route.public === true ? null : checkToken(req, this.guard));
      if (refusal !== null)
        return sendJson(res, refusal.status, { error: { code: refusal.code, message: refusal.message } });
      if (target === null)
        return sendJson(res, 400, {
          error: { code: 'INVALID_ARGUMENT', message: 'The request target is not a valid path' },
        });
      if (found === undefined) {
        const allowed = this.routes.some((r) => r.pattern.test(target.pathname));
        return sendJson(res, allowed ? 405 : 404, {
          error: {
            code: allowed ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND',
            message: `${method} ${target.pathname} is not a route`,
          },
        });
      }
      const params = paramsOf(found.route, target.pathname);
      if (params === null) return sendJson(res, 400, { error: { code: 'INVALID_ARGUMENT', message: MALFORMED_PATH } });
      let body: unknown;
      if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
        const read = await readJsonBody(req, this.maxBodyBytes);
        if (read.tooLarge) return refuseBody(req, res, this.maxBodyBytes);
        if (read.invalid && found.route.jsonRpc)
          return sendJson(res, 400, {
            jsonrpc: '2.0',
            id: null,
            error: { code: -32700, message: 'Parse error: the request body is not valid JSON' },
          });
        if (read.invalid) throw new BoxError('INVALID_ARGUMENT', 'request', 'The request body is not valid JSON');
        body = read.body;
      }
      const result = await found.route.handler({ req, res, params, query: target.query, body });
      if (!res.headersSent && !res.writableEnded) sendJson(res, res.statusCode, result ?? { ok: true });
    } catch (err) {
      if (!isBoxError(err)) this.reportUnexpected(err, 'request');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const boxError = isBoxError(err)
        ? err
        : new BoxError('INTERNAL_ERROR', 'runtime', 'Internal error (reported in the serve log)', { cause: err });
      sendJson(res, httpStatusOf(boxError.code), {
        error: { code: boxError.code, message: boxError.message, phase: boxError.phase, details: boxError.details },
      });
    }
  }

  private get maxBodyBytes(): number {
    return this.opts.maxBodyBytes ?? this.opts.maxPayload;
  }

  private reportUnexpected(err: unknown, where: 'request' | 'upgrade'): void {
    if (this.opts.onUnexpectedError !== undefined) this.opts.onUnexpectedError(err, where);
    else
      process.emitWarning(
        `mcp-box: unexpected error in an HTTP ${where} handler: ` +
          `${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, code: string, message: string): void =>
      void socket.end(rawErrorResponse(status, code, message));
    const target = parseTarget(req.url);
    const route = target === null ? undefined : this.upgrades.find((u) => u.pattern.test(target.pathname));
    const refusal =
      checkOriginAndHost(req, this.guard) ?? (route?.public === true ? null : checkToken(req, this.guard));
    if (refusal !== null) return refuse(refusal.status, refusal.code, refusal.message);
    if (target === null) return refuse(400, 'INVALID_ARGUMENT', 'The request target is not a valid path');
    if (route === undefined) return refuse(404, 'NOT_FOUND', `${target.pathname} is not a WebSocket route`);
    const params = paramsOf(route, target.pathname);
    if (params === null) return refuse(400, 'INVALID_ARGUMENT', MALFORMED_PATH);
    const requested = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!requested.includes(route.protocol))
      return refuse(400, 'BAD_REQUEST', `the WebSocket subprotocol must be "${route.protocol}"`);
    try {
      route.check(req, params);
    } catch (err) {
      if (!isBoxError(err)) {
        this.reportUnexpected(err, 'upgrade');
        return refuse(500, 'INTERNAL_ERROR', 'Internal error (reported in the serve log)');
      }
      return refuse(httpStatusOf(err.code), err.code, err.message);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        route.handler(ws, req, params);
      } catch (err) {
        this.reportUnexpected(err, 'upgrade');
        ws.terminate();
      }
    });
  }

  private match(method: string, pathname: string): { route: Route } | undefined {
    const route = this.routes.find((r) => r.method === method && r.pattern.test(pathname));
    return route === undefined ? undefined : { route };
  }
}

function compilePath(path: string): { pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const source = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { pattern: new RegExp(`^${source}$`), names };
}

const MALFORMED_PATH = 'The path is not valid percent-encoding (a % must start a UTF-8 escape such as %20)';

/** The path and query of a request target; null when it cannot be parsed (e.g. `//[`). */
function parseTarget(url: string | undefined): Target {
  try {
    const parsed = new URL(url ?? '/', 'http://localhost');
    return { pathname: parsed.pathname, query: parsed.searchParams };
  } catch {
    return null;
  }
}

/** The decoded path parameters of a route that matched; null when one is not valid percent-encoding. */
function paramsOf(route: { pattern: RegExp; names: string[] }, pathname: string): Params | null {
  const m = route.pattern.exec(pathname);
  const params: Params = {};
  try {
    route.names.forEach((name, i) => (params[name] = decodeURIComponent(m?.[i + 1] ?? '')));
  } catch {
    return null;
  }
  return params;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** Reads a JSON body of at most `limit` bytes; stops reading (without a throw) at the first byte over it. */
async function readJsonBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ tooLarge: true; invalid?: undefined } | { tooLarge: false; invalid?: boolean; body?: unknown }> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return { tooLarge: true };
  const chunks: Buffer[] = [];
  let size = 0;
  const tooLarge = await new Promise<boolean>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      cleanup();
      resolve(true);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(false);
    };
    const onError = (err: Error): void => {
      cleanup();
      // The client went away mid-body (or the request timed out): not a bug to report.
      reject(new BoxError('ABORTED', 'runtime', 'The request body was cut off before it was complete', { cause: err }));
    };
    const cleanup = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError);
      req.pause();
    };
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
  if (tooLarge) return { tooLarge: true };
  if (size === 0) return { tooLarge: false, body: undefined };
  try {
    return { tooLarge: false, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { tooLarge: false, invalid: true };
  }
}

/**
 * Answers 413 with `Connection: close`, and keeps reading (and dropping) the rest of the body until
 * the client has sent it or gives up, bounded in bytes and time: closing a socket with unread data
 * makes the kernel send a reset, which can destroy the answer before the client reads it. The
 * answer is written in full at once; ending the response (which closes the socket) waits.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse, limit: number): void {
  const text = JSON.stringify({
    error: {
      code: 'PAYLOAD_TOO_LARGE',
      message: `The request body is larger than ${limit} bytes (server.maxBodyBytes)`,
    },
  });
  res.shouldKeepAlive = false;
  res.writeHead(httpStatusOf('PAYLOAD_TOO_LARGE'), {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    Connection: 'close',
  });
  res.write(text);
  let discarded = 0;
  const finish = (): void => {
    clearTimeout(timer);
    req.off('data', onData);
    if (!res.writableEnded) res.end();
  };
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded > DISCARD_AFTER_REFUSAL_BYTES) {
      finish();
      req.socket.destroy();
    }
  };
  const timer = setTimeout(() => {
    finish();
    req.socket.destroy();
  }, DISCARD_AFTER_REFUSAL_MS);
  timer.unref();
  if (req.complete) return finish();
  req.on('data', onData).once('end', finish).once('close', finish);
  req.resume();
}

/** A whole HTTP/1.1 answer with an error envelope and `Connection: close`, for a socket no ServerResponse owns. */
function rawErrorResponse(status: number, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`
  );
}

/** What Node's parser refused, as our answer: the statuses Node itself would send, in the error envelope. */
function clientErrorAnswer(err: NodeJS.ErrnoException): { status: number; code: string; message: string } {
  const reason = err.code ?? 'unknown';
  if (reason === 'HPE_HEADER_OVERFLOW')
    return {
      status: 431,
      code: 'HEADERS_TOO_LARGE',
      message: 'The request line and headers are larger than the server accepts',
    };
  if (reason === 'ERR_HTTP_REQUEST_TIMEOUT' || /^HPE_.*TIMEOUT$/.test(reason))
    return { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request was not received in time' };
  if (reason === 'HPE_CHUNK_EXTENSIONS_OVERFLOW')
    return {
      status: httpStatusOf('PAYLOAD_TOO_LARGE'),
      code: 'PAYLOAD_TOO_LARGE',
      message: 'The chunk extensions of the request body are larger than the server accepts',
    };
  return { status: 400, code: 'BAD_REQUEST', message: `The request is not valid HTTP (${reason})` };
}

/** Sockets answered by onClientError, until they close. */
const lingering = new WeakSet<Duplex>();

/**
 * Answers a request Node could not parse, unless the socket is gone or an answer already started
 * there (a second one would corrupt it), then closes. The answer ends the socket (FIN after it)
 * before it is destroyed: destroying at once with unread input sends a reset that can discard the
 * answer before the client reads it (see refuseBody).
 */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex, res: ServerResponse | undefined): void {
  // More input after the answer fails to parse again: the answer stands, the linger timer closes.
  if (lingering.has(socket)) return;
  const answering = res !== undefined && res.headersSent && !res.writableEnded;
  if (err.code === 'ECONNRESET' || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  const { status, code, message } = clientErrorAnswer(err);
  socket.on('error', () => undefined);
  socket.end(rawErrorResponse(status, code, message));
  lingering.add(socket);
  const timer = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function statusText(status: number): string {
  return (
    {
      400: 'Bad Request',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      408: 'Request Timeout',
      409: 'Conflict',
      413: 'Payload Too Large',
      431: 'Request Header Fields Too Large',
      500: 'Internal Server Error',
      503: 'Service Unavailable',
    }[status] ?? 'Error'
  );
}
