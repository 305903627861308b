/**
 * An MCP SDK `Transport` over a `ws` WebSocket: one JSON-RPC message per text frame, subprotocol
 * `mcp`, the token in the Authorization header (never the URL), a deliberate maxPayload matching
 * the relay's line limit, send() that waits while the socket's buffer is high, and a close code /
 * reason surfaced in `closeInfo` so callers can tell why the relay went away.
 *
 * A refused upgrade rejects connect() with a BoxError in phase relay_connect, its `details`
 * { status, code? } carrying the HTTP status and the envelope's error code: 404 (no such process)
 * is NOT_FOUND; 401 / 403 (token, origin or host refused) is RELAY_CONNECT_FAILED with
 * `details.auth: true` (ErrorCode has no authentication code yet); anything else is
 * RELAY_CONNECT_FAILED.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { WebSocket } from 'ws';
import { BoxError } from '../errors/box-error.js';

const SEND_HIGH_WATER = 8 * 1024 * 1024;

export interface WsClientTransportOptions {
  url: string;
  token: string;
  /** Replace a client already attached to the process. */
  takeover?: boolean;
  maxPayload?: number;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

export class WsClientTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  /** Why the socket closed (code and reason), once it has. */
  closeInfo: { code: number; reason: string } | null = null;
  private ws: WebSocket | null = null;
  private readonly opts: WsClientTransportOptions;

  constructor(opts: WsClientTransportOptions) {
    this.opts = opts;
  }

  /** The SDK calls start(); a caller may connect() first to tell relay_connect from mcp_init. */
  async start(): Promise<void> {
    if (this.ws === null) await this.connect();
  }

  async connect(): Promise<void> {
    if (this.ws !== null) throw new Error('WsClientTransport already connected');
    const signal = this.opts.signal;
    const cancelled = (): BoxError => new BoxError('ABORTED', 'relay_connect', 'Connecting to the relay was cancelled');
    if (signal?.aborted === true) throw cancelled();
    const ws = new WebSocket(this.opts.url, 'mcp', {
      headers: {
        Authorization: `Bearer ${this.opts.token}`,
        ...(this.opts.takeover === true ? { 'X-MCP-Box-Takeover': '1' } : {}),
      },
      maxPayload: this.opts.maxPayload ?? 17 * 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: this.opts.connectTimeoutMs ?? 10_000,
    });
    this.ws = ws;
    let onAbort = (): void => undefined;
    await new Promise<void>((resolve, reject) => {
      onAbort = (): void => {
        ws.terminate();
        reject(cancelled());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(refusalError(res.statusCode ?? 0, body)));
      });
      ws.once('error', (err) =>
        reject(
          new BoxError('ENGINE_ERROR', 'relay_connect', `Cannot connect to the relay: ${err.message}`, { cause: err }),
        ),
      );
    }).finally(() => {
      // Every outcome (open, refused, error, abort) unlinks: the caller's signal is often long-lived.
      signal?.removeEventListener('abort', onAbort);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return this.onerror?.(new Error('the relay sent a binary frame'));
      let parsed: JSONRPCMessage;
      try {
        parsed = JSONRPCMessageSchema.parse(JSON.parse(data.toString('utf8')));
      } catch (err) {
        this.onerror?.(new Error(`the relay sent a frame that is not a JSON-RPC message: ${(err as Error).message}`));
        return;
      }
      this.onmessage?.(parsed);
    });
    ws.on('error', (err) => this.onerror?.(err));
    ws.once('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString('utf8') };
      this.onclose?.();
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN)
      throw new BoxError('PROCESS_NOT_RUNNING', 'relay_connect', 'The relay connection is not open');
    await new Promise<void>((resolve, reject) => {
      ws.send(JSON.stringify(message), (err) => (err ? reject(err) : resolve()));
      if (ws.bufferedAmount < SEND_HIGH_WATER) resolve();
    });
  }

  async close(): Promise<void> {
    const ws = this.ws;
    if (ws === null) return;
    if (ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000, 'client closed');
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}

/** The error for an upgrade the relay answered with an HTTP response (`body` a JSON error envelope or text). */
function refusalError(status: number, body: string): BoxError {
  let message = body;
  let code: string | undefined;
  try {
    const error = (JSON.parse(body) as { error?: { message?: unknown; code?: unknown } }).error;
    if (typeof error?.message === 'string') message = error.message;
    if (typeof error?.code === 'string') code = error.code;
  } catch {
    // plain text
  }
  const details = { status, ...(code === undefined ? {} : { code }) };
  if (status === 401 || status === 403) {
    const what = status === 401 ? 'the token' : 'the request (origin or host)';
    return new BoxError(
      'RELAY_CONNECT_FAILED',
      'relay_connect',
      `The relay refused ${what} (HTTP ${status}): ${message}`,
      { details: { ...details, auth: true } },
    );
  }
  if (status === 404)
    return new BoxError('NOT_FOUND', 'relay_connect', `The relay refused the connection (HTTP ${status}): ${message}`, {
      details,
    });
  return new BoxError(
    'RELAY_CONNECT_FAILED',
    'relay_connect',
    `The relay refused the connection (HTTP ${status}): ${message}`,
    { details },
  );
}
