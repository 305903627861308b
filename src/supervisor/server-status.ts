/**
 * A server's status as the API shows it, projected from what its ManagedServer holds. Pure: the
 * same facts always give the same status; absent facts are absent fields, not `undefined` ones.
 */
import type { ServerPhase } from '../errors/box-error.js';
import type { FailureRecord, ServerState, ServerStatus } from './types.js';

export interface StatusFacts {
  name: string;
  /** The state, the phase running (or of the last failure), the last failure. */
  lifecycle: { state: ServerState; phase: ServerPhase | undefined; error: FailureRecord | undefined };
  clientMode: ServerStatus['clientMode'];
  /** The current attempt: its session and, once started, its process. */
  attempt: {
    session: { info: { name: string } };
    proc: { running: boolean; pid: number; startedAt: string } | null;
  } | null;
  /** The identity the server holds (kept across attempts). */
  identity: { uid: number; workspace: string } | null;
  /** The relay URL of the attempt's process, or null. */
  relayUrl: string | null;
  /** When the server last became ready (ms since the epoch). */
  readyAt: number | undefined;
  restarts: number;
  tools: number | undefined;
  installTaskId: string | undefined;
}

export function serverStatus(facts: StatusFacts): ServerStatus {
  const { attempt: a, identity, relayUrl: url } = facts;
  const { state, phase, error } = facts.lifecycle;
  return {
    name: facts.name,
    state,
    ...(phase === undefined ? {} : { phase }),
    // A copy: the record a caller holds does not change with the server's.
    ...(error === undefined ? {} : { error: { ...error } }),
    relay: url === null ? null : { url, subprotocol: 'mcp' },
    clientMode: facts.clientMode,
    ...(a === null ? {} : { session: a.session.info.name }),
    ...(identity === null ? {} : { uid: identity.uid, workspace: identity.workspace }),
    ...(a?.proc != null && a.proc.running ? { pid: a.proc.pid, startedAt: a.proc.startedAt } : {}),
    ...(state === 'ready' && facts.readyAt !== undefined ? { readyAt: new Date(facts.readyAt).toISOString() } : {}),
    restarts: facts.restarts,
    ...(facts.tools === undefined ? {} : { tools: facts.tools }),
    ...(facts.installTaskId === undefined ? {} : { installTaskId: facts.installTaskId }),
  };
}
