import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { ErrorCode, ServerPhase } from '../errors/box-error.js';

import type { ServerState } from './server-states.js';

export type { ServerState } from './server-states.js';

/** What went wrong, where, and what happens next (BRIEF §2). Secrets are redacted. */
export interface FailureRecord {
  phase: ServerPhase;
  code: ErrorCode;
  message: string;
  retryable: boolean;
  exitCode?: number | null;
  signal?: string | null;
  oomKilled?: boolean;
  stderrTail: string;
  durationMs: number;
  attempt: number;
  maxAttempts: number;
  nextRetryAt?: string;
  /** Set when the loop stopped early: this many start attempts in a row failed the same way. */
  sameFailureCount?: number;
  at: string;
}

export interface RelayInfo {
  url: string;
  subprotocol: 'mcp';
}

export interface ServerStatus {
  name: string;
  state: ServerState;
  /** The phase running now (while starting) or the phase of the last failure (backoff/failed). */
  phase?: ServerPhase;
  error?: FailureRecord;
  relay: RelayInfo | null;
  /** Who holds the MCP client session: the supervisor, or the platform through the relay. */
  clientMode: 'supervisor' | 'external';
  session?: string;
  /** The server's uid and workspace path inside the session. */
  uid?: number;
  workspace?: string;
  pid?: number;
  startedAt?: string;
  readyAt?: string;
  restarts: number;
  tools?: number;
  installTaskId?: string;
}

export interface StatusEvent {
  name: string;
  state: ServerState;
  previous: ServerState | null;
  phase?: ServerPhase;
  error?: FailureRecord;
  at: string;
}

/** The lists an MCP server can say have changed (`notifications/{kind}/list_changed`). */
export type ListKind = 'tools' | 'prompts' | 'resources';

/** A server's own `notifications/{kind}/list_changed`, as its supervisor's client heard it. */
export interface ListChangedEvent {
  name: string;
  kind: ListKind;
}

/** `get(name)`: the status plus, when the supervisor holds it and the server is ready, the SDK client. */
export interface ServerView extends ServerStatus {
  client?: Client;
}
