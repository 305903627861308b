/**
 * The HTTP server of mcp-box: a small route table for JSON endpoints and WebSocket upgrades, with
 * the request guard applied to everything (except routes marked public, such as /healthz) before
 * any handler — and, for upgrades, before the WebSocket handshake. Errors are JSON envelopes
 * `{ "error": { "code", "message", "phase"?, "details"? } }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
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
}

interface UpgradeRoute {
  pattern: RegExp;
  names: string[];
  check: UpgradeCheck;
  handler: UpgradeHandler;
  protocol: string;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  token: string;
  allowedHosts?: string[];
  /** Largest WebSocket message accepted from clients. */
  maxPayload: number;
  maxBodyBytes?: number;
}

export class HttpServer {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly routes: Route[] = [];
  private readonly upgrades: UpgradeRoute[] = [];
  private readonly guard: GuardOptions;
  private readonly opts: HttpServerOptions;

  constructor(opts: HttpServerOptions) {
    this.opts = opts;
    this.guard = { token: opts.token, ...(opts.allowedHosts === undefined ? {} : { allowedHosts: opts.allowedHosts }), port: () => this.port };
    this.server = createServer((req, res) => void this.onRequest(req, res));
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 0; // SSE and long polls stay open
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxPayload,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has('mcp') ? 'mcp' : false),
    });
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  route(method: string, path: string, handler: RouteHandler, opts: { public?: boolean } = {}): this {
    const { pattern, names } = compilePath(path);
    this.routes.push({ method, pattern, names, handler, public: opts.public === true });
    return this;
  }

  upgrade(path: string, protocol: string, check: UpgradeCheck, handler: UpgradeHandler): this {
    const { pattern, names } = compilePath(path);
    this.upgrades.push({ pattern, names, check, handler, protocol });
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    try {
      const found = this.match(method, url.pathname);
      const refusal = checkOriginAndHost(req, this.guard) ?? (found?.route.public === true ? null : checkToken(req, this.guard));
      if (refusal !== null) return sendJson(res, refusal.status, { error: { code: refusal.code, message: refusal.message } });
      if (found === undefined) {
        const allowed = this.routes.some((r) => r.pattern.test(url.pathname));
        return sendJson(res, allowed ? 405 : 404, { error: { code: allowed ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', message: `${method} ${url.pathname} is not a route` } });
      }
      const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? await readJsonBody(req, this.opts.maxBodyBytes ?? 1024 * 1024) : undefined;
      const result = await found.route.handler({ req, res, params: found.params, query: url.searchParams, body });
      if (!res.headersSent && !res.writableEnded) sendJson(res, res.statusCode, result ?? { ok: true });
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const boxError = isBoxError(err) ? err : new BoxError('ENGINE_ERROR', 'runtime', 'Internal error', { cause: err });
      sendJson(res, httpStatusOf(boxError.code), { error: { code: boxError.code, message: boxError.message, phase: boxError.phase, details: boxError.details } });
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, code: string, message: string): void => {
      const body = JSON.stringify({ error: { code, message } });
      socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    const url = new URL(req.url ?? '/', 'http://localhost');
    const refusal = checkOriginAndHost(req, this.guard) ?? checkToken(req, this.guard);
    if (refusal !== null) return refuse(refusal.status, refusal.code, refusal.message);
    const route = this.upgrades.find((u) => u.pattern.test(url.pathname));
    if (route === undefined) return refuse(404, 'NOT_FOUND', `${url.pathname} is not a WebSocket route`);
    const requested = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!requested.includes(route.protocol)) return refuse(400, 'BAD_REQUEST', `the WebSocket subprotocol must be "${route.protocol}"`);
    const params = paramsOf(route.pattern, route.names, url.pathname);
    try {
      route.check(req, params);
    } catch (err) {
      const boxError = isBoxError(err) ? err : new BoxError('ENGINE_ERROR', 'relay_connect', String(err));
      return refuse(httpStatusOf(boxError.code), boxError.code, boxError.message);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => route.handler(ws, req, params));
  }

  private match(method: string, pathname: string): { route: Route; params: Params } | undefined {
    for (const route of this.routes) {
      if (route.method !== method || !route.pattern.test(pathname)) continue;
      return { route, params: paramsOf(route.pattern, route.names, pathname) };
    }
    return undefined;
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

function paramsOf(pattern: RegExp, names: string[], pathname: string): Params {
  const m = pattern.exec(pathname);
  const params: Params = {};
  names.forEach((name, i) => (params[name] = decodeURIComponent(m?.[i + 1] ?? '')));
  return params;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BoxError('INVALID_ARGUMENT', 'config', `The request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BoxError('INVALID_ARGUMENT', 'config', 'The request body is not valid JSON');
  }
}

function statusText(status: number): string {
  return { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 503: 'Service Unavailable' }[status] ?? 'Error';
}
