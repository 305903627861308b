/**
 * The seam between a `StdioRelay` and whoever is on the other side of a process's stdio: a peer.
 *
 * The relay owns the process's streams: it is the only reader of stdout and the only writer of
 * stdin, it frames and parses lines, tracks requests in flight, answers them in the process's place
 * when no answer can come, and holds lines while nobody is attached. A peer only carries messages:
 *
 *   relay → peer   `deliver(bytes, message, done)` for each stdout line, `answer(message)` for what
 *                  the relay says itself, `pause()` / `resume()` for stdin backpressure, and
 *                  `detach(close?)` once, when the relay lets go of it.
 *   peer → relay   through the `RelayPeerLink` given in `attached(link)`: `write(message)` (the relay
 *                  serialises it to one line and writes it with drain), `rejected()`, `left()`,
 *                  `event(note)`.
 *
 * Kinds today: `WsPeer` (ws-peer.ts, a WebSocket client) and the peer inside `InProcessTransport`
 * (in-process-peer.ts, the supervisor's own SDK Client). One peer is attached at a time; the link is
 * per peer, so a relay that later serves several peers at once can keep this contract.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export type AttachResult = { attached: true } | { attached: false; code: number; reason: string };

/** What the relay answers, in the process's place, for a request that can get no answer. */
export interface RelayAnswer {
  message: string;
  data: { phase: string; code: string };
}

/** How the relay ends a peer: a WebSocket close code and reason (see close-codes.ts), for every kind. */
export interface RelayPeerClose {
  code: number;
  reason: string;
  /**
   * The answer the relay gave to the requests in flight, for requests the peer still holds and never
   * handed over (an in-process peer paused by stdin backpressure): they get the same answer.
   */
  answer?: RelayAnswer;
}

/** The peer's way back into the relay; calls after the peer was detached are ignored. */
export interface RelayPeerLink {
  /**
   * One message (or batch) for stdin, shape already checked; the relay serialises it once. Throws when it cannot
   * be serialised.
   */
  write(message: JSONRPCMessage | JSONRPCMessage[]): void;
  /** The peer refused something it was sent (counted in the relay's `rejectedFrames`). */
  rejected(): void;
  /** The peer went away by itself (its socket closed, its owner closed it). */
  left(): void;
  /** A note for the process log. */
  event(message: string): void;
}

export interface RelayPeer {
  /** How the process log names it: "client" (WebSocket), "in-process client". */
  readonly label: string;
  /** The relay attached this peer; messages for stdin go to `link` from now on. */
  attached(link: RelayPeerLink): void;
  /**
   * One stdout line. `bytes()` is the line as the process wrote it (no newline; for a shared client, the message
   * with its own id, serialised on the call); `message()` is its parsed value, a JSON object or array, not
   * validated (parsed once by the relay for a live line; a line held while nobody was attached is parsed on the
   * call). A peer asks only for the form it uses. Call `done` once the line is taken (sent, or handed over): the
   * relay pauses stdout while too much is untaken.
   */
  deliver(bytes: () => Buffer, message: () => unknown, done: () => void): void;
  /** A message the relay says itself (an error answer for a request). */
  answer(message: JSONRPCMessage): void;
  /** stdin is full: stop handing messages over until `resume()`. */
  pause(): void;
  resume(): void;
  /**
   * The relay lets go of this peer (called once; also for a peer refused at attach). With `close`,
   * the relay ended it and the peer closes with that code and reason; without, the peer had left.
   */
  detach(close?: RelayPeerClose): void;
}
