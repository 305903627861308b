/**
 * What a failed MCP call of the supervisor's client means. The SDK's own errors share their codes
 * with what a server may answer (-32000 ConnectionClosed, -32001 RequestTimeout): a closed
 * connection leaves the client without a transport, and the SDK's timeout comes only after the
 * timeout. An answer the relay gave in the process's place carries the `{ phase, code }` of why.
 * Pure.
 */
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { BoxError } from '../errors/box-error.js';
import { relayFailure } from './exit-failure.js';
import type { ServerState } from './types.js';

export interface CallContext {
  /** "tool \"x\"", "tools/list" */
  what: string;
  server: string;
  timeoutMs: number;
  elapsedMs: number;
  /** The client's transport is gone (it closed). */
  transportGone: boolean;
  redact: (text: string) => string;
}

/** The SDK's own failure, when it is one: the connection closed, or the call timed out. */
export function sdkFailure(
  err: unknown,
  ctx: Pick<CallContext, 'timeoutMs' | 'elapsedMs' | 'transportGone'>,
): 'closed' | 'timeout' | null {
  if (!(err instanceof McpError)) return null;
  if (err.code === ErrorCode.ConnectionClosed && ctx.transportGone) return 'closed';
  if (err.code === ErrorCode.RequestTimeout && ctx.elapsedMs >= ctx.timeoutMs - 5) return 'timeout';
  return null;
}

export function timeoutError(err: unknown, ctx: CallContext, consecutiveTimeouts: number): BoxError {
  return new BoxError(
    'TOOL_TIMEOUT',
    'tool_call',
    `${ctx.what} of "${ctx.server}" did not answer within ${ctx.timeoutMs} ms; ` +
      'it was cancelled (notifications/cancelled sent) and the server stays up',
    { cause: err, details: { timeoutMs: ctx.timeoutMs, consecutiveTimeouts } },
  );
}

/** The error of a call that failed otherwise: the relay's answer for a process that is gone, or the server's own. */
export function callError(err: unknown, ctx: CallContext): { error: BoxError; relayed: boolean } {
  const text = err instanceof Error ? err.message : String(err);
  const relayed = err instanceof McpError ? relayFailure(err.data) : null;
  if (relayed !== null) {
    return {
      error: new BoxError(relayed.code, relayed.phase, `${ctx.what} of "${ctx.server}" got no answer: ${text}`, {
        cause: err,
      }),
      relayed: true,
    };
  }
  const code = err instanceof McpError ? err.code : undefined;
  const error = new BoxError(
    'TOOL_CALL_FAILED',
    'tool_call',
    `${ctx.what} of "${ctx.server}" failed: ${ctx.redact(text)}`,
    {
      cause: err,
      details: code === undefined ? {} : { jsonRpcCode: code },
    },
  );
  return { error, relayed: false };
}

/** A call on a server with no client of the supervisor's to run it on: not ready, or its client is external. */
export function notReadyError(
  what: string,
  server: string,
  clientMode: 'supervisor' | 'external',
  state: ServerState,
): BoxError {
  const why = clientMode === 'external' ? 'its MCP client is external (box.client: "external")' : `it is ${state}`;
  return new BoxError('PROCESS_NOT_RUNNING', 'tool_call', `Cannot run ${what} on "${server}": ${why}`, {
    details: { state },
  });
}
