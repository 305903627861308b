/**
 * A WebSocket client as a relay peer (`new WsPeer(ws, { heartbeatMs })`; `StdioRelay.attach(ws)`
 * wraps the socket in one).
 *
 * stdout → client: one text frame per line carrying the line's bytes as they are (no decode/encode
 * round trip); `done` runs from the send callback, which is the relay's send backpressure.
 *
 * client → stdin: each text frame must be one JSON-RPC message (or batch); it is parsed, its shape
 * checked and handed to the relay, which re-serialises it to one line (no framing injection). A
 * binary frame, a frame that is not JSON or not JSON-RPC gets a JSON-RPC error back (-32600 or
 * -32700) and never reaches stdin. `pause()` / `resume()` stop and restart reading the socket.
 *
 * Heartbeat: a ping every `heartbeatMs`; a client that has not answered the previous one is
 * terminated. `detach(close)` closes the socket with the relay's code and reason.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { WebSocket } from 'ws';
import { idOf, jsonRpcProblem } from './json-rpc.js';
import type { RelayPeer, RelayPeerClose, RelayPeerLink } from './relay-peer.js';

export interface WsPeerOptions {
  heartbeatMs: number;
}

export class WsPeer implements RelayPeer {
  readonly label = 'client';
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly opts: WsPeerOptions,
  ) {}

  attached(link: RelayPeerLink): void {
    const ws = this.ws;
    let alive = true;
    ws.on('pong', () => (alive = true));
    this.heartbeat = setInterval(() => {
      if (!alive) {
        link.event('client missed its heartbeat; closing');
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, this.opts.heartbeatMs);
    this.heartbeat.unref();
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(link, data, isBinary));
    ws.once('close', () => {
      this.stopHeartbeat();
      link.left();
    });
    ws.on('error', () => undefined);
  }

  deliver(bytes: () => Buffer, _message: () => unknown, done: () => void): void {
    // A text frame carrying the line's bytes as they are.
    this.ws.send(bytes(), { binary: false }, () => done());
  }

  answer(message: JSONRPCMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(message));
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  detach(close?: RelayPeerClose): void {
    this.stopHeartbeat();
    this.ws.removeAllListeners('message');
    if (close !== undefined && this.ws.readyState === this.ws.OPEN) this.ws.close(close.code, close.reason);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private onFrame(link: RelayPeerLink, data: Buffer, isBinary: boolean): void {
    const reply = (id: unknown, code: number, message: string): void => {
      link.rejected();
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code, message } }));
    };
    if (isBinary)
      return reply(null, -32600, 'binary frames are not accepted: send one JSON-RPC message per text frame');
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return reply(null, -32700, 'parse error: a frame must hold exactly one JSON-RPC message');
    }
    const problem = jsonRpcProblem(message);
    if (problem !== null) return reply(idOf(message), -32600, `invalid request: ${problem}`);
    link.write(message as JSONRPCMessage | JSONRPCMessage[]);
  }
}
