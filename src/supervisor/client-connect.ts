/**
 * relay_connect and mcp_init: the supervisor's own MCP client attaches to the process's relay and
 * initializes. `initialize` is tried again while the process lives and the startup deadline has
 * not passed (a server that loads slowly), each round with its own timeout.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ErrorCode,
  McpError,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { BoxError, isBoxError } from '../errors/box-error.js';
import { linkedSignal } from '../util/abort.js';
import { MCP_BOX_VERSION } from '../version.js';
import type { Attempt, ClientTransport } from './attempt.js';
import type { ListKind } from './types.js';
import { raceExit, type StartContext } from './start-phases.js';

const INIT_ATTEMPT_MS = 15_000;
/** How long a failed phase waits for the exit record of a process that may be ending. */
const EXIT_SETTLE_MS = 5000;

/** The supervisor's own client of server `ctx.name`; the server's `list_changed` notifications go to its host. */
export function newClient(ctx: StartContext): Client {
  const client = new Client({ name: 'mcp-box', version: MCP_BOX_VERSION }, { capabilities: {} });
  const heard = (kind: ListKind) => (): void => ctx.host.listChanged?.(ctx.name, kind);
  client.setNotificationHandler(ToolListChangedNotificationSchema, heard('tools'));
  client.setNotificationHandler(PromptListChangedNotificationSchema, heard('prompts'));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, heard('resources'));
  return client;
}

/** A client over a new connection, initialized (used to reconnect a ready server). */
export async function reconnectClient(
  ctx: StartContext,
  attempt: Attempt,
): Promise<{ client: Client; transport: ClientTransport }> {
  const transport = await ctx.host.connectTransport(attempt.session, ctx.name);
  const client = newClient(ctx);
  await client.connect(transport, { timeout: INIT_ATTEMPT_MS });
  return { client, transport };
}

/** Attaches and initializes the attempt's client; sets `attempt.client` and `attempt.transport`. */
export async function connectClient(ctx: StartContext, attempt: Attempt, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + ctx.spec.startupTimeoutMs;
  const proc = attempt.proc;
  if (proc === null) throw new BoxError('INTERNAL_ERROR', 'relay_connect', 'connectClient before the process started');
  for (let round = 1; ; round++) {
    ctx.setPhase('relay_connect');
    let transport: ClientTransport;
    try {
      transport = await raceExit(
        ctx,
        attempt,
        ctx.host.connectTransport(attempt.session, ctx.name, signal),
        EXIT_SETTLE_MS,
      );
    } catch (err) {
      // The process ended (its exit record says why), or another phase's failure: as it is.
      if (isBoxError(err) && (err.phase !== 'relay_connect' || err.details.exit !== undefined)) throw err;
      throw new BoxError(
        'RELAY_CONNECT_FAILED',
        'relay_connect',
        `Cannot attach to the relay of "${ctx.name}": ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    ctx.setPhase('mcp_init');
    const client = newClient(ctx);
    const remaining = deadline - Date.now();
    try {
      // The SDK's request() never removes the abort listener it adds: each round gets its own signal.
      const once = linkedSignal(signal);
      try {
        await raceExit(
          ctx,
          attempt,
          client.connect(transport, {
            timeout: Math.max(1000, Math.min(INIT_ATTEMPT_MS, remaining)),
            signal: once.signal,
          }),
          EXIT_SETTLE_MS,
        );
      } finally {
        once.release();
      }
      attempt.client = client;
      attempt.transport = transport;
      return;
    } catch (err) {
      await client.close().catch(() => undefined);
      if (isBoxError(err)) throw err;
      const timedOut = err instanceof McpError && err.code === ErrorCode.RequestTimeout;
      if (timedOut && proc.running && Date.now() < deadline && !signal.aborted) {
        ctx.log.line('lifecycle', `no answer to initialize yet (attempt ${round}); the process is alive, trying again`);
        continue;
      }
      const tail = ctx.log.tail('stderr', 40).join('\n');
      throw new BoxError(
        timedOut ? 'MCP_INIT_TIMEOUT' : 'MCP_INIT_FAILED',
        'mcp_init',
        timedOut
          ? `"${ctx.name}" did not answer initialize within its startup deadline ` +
              `(${Math.round(ctx.spec.startupTimeoutMs / 1000)} s)${tail === '' ? '' : `; stderr:\n${tail}`}`
          : `initialize failed: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
}
