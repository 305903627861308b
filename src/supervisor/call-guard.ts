/**
 * The supervisor's client's calls to a ready server (tools/list, tools/call), and what a failed
 * one means for the server.
 * An exit during the call is the better error (a closed connection waits a moment for it). A
 * timeout counts: `recycleAfterTimeouts` in a row recycle the server. Any other failure becomes
 * the server's last error, except the relay's answer for a process that is gone (its exit has the
 * record).
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { BoxError } from '../errors/box-error.js';
import type { ProcessExit } from '../runtime/types.js';
import type { Attempt } from './attempt.js';
import { callError, sdkFailure, timeoutError } from './call-error.js';
import { EXIT_SETTLE_MS } from './health.js';

export interface GuardedServer {
  name: string;
  /** A call's timeout unless it asks for its own. */
  toolTimeoutMs: number;
  /** Tool-call timeouts in a row that recycle the server (0: never). */
  recycleAfterTimeouts: number;
  redact: (text: string) => string;
  log: (line: string) => void;
  /** What the process's exit, seen during a call, means ("while tool \"x\" was running"). */
  exitError: (exit: ProcessExit, context: string) => BoxError;
  /** A failed call's error, to become the server's last failure. */
  onCallFailed: (error: BoxError, startedAt: number) => void;
}

export class CallGuard {
  private consecutiveTimeouts = 0;

  constructor(private readonly server: GuardedServer) {}

  /** A new attempt, or a tool call that answered: the timeouts in a row start over. */
  reset(): void {
    this.consecutiveTimeouts = 0;
  }

  async listTools(attempt: Attempt | null, client: Client, opts: { signal?: AbortSignal }): Promise<Tool[]> {
    const timeout = this.server.toolTimeoutMs;
    const result = await this.run(attempt, 'tools/list', timeout, () =>
      client.listTools(undefined, { timeout, ...(opts.signal === undefined ? {} : { signal: opts.signal }) }),
    );
    return result.tools;
  }

  async callTool(
    attempt: Attempt | null,
    client: Client,
    call: { tool: string; args: Record<string, unknown>; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<CallToolResult> {
    const timeout = call.timeoutMs ?? this.server.toolTimeoutMs;
    const result = await this.run(attempt, `tool "${call.tool}"`, timeout, () =>
      client.callTool({ name: call.tool, arguments: call.args }, undefined, {
        timeout,
        ...(call.signal === undefined ? {} : { signal: call.signal }),
      }),
    );
    // The run of timeouts that recycles the server is of tool calls: only a tool's answer ends it.
    this.reset();
    return result as CallToolResult;
  }

  /** Runs `call` on `attempt`'s client; a failure is thrown as the BoxError it means. */
  private async run<T>(attempt: Attempt | null, what: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const client = attempt?.client;
    try {
      return await call();
    } catch (err) {
      const { server } = this;
      const ctx = {
        what,
        server: server.name,
        timeoutMs,
        elapsedMs: Date.now() - started,
        transportGone: client?.transport === undefined,
        redact: server.redact,
      };
      const sdk = sdkFailure(err, ctx);
      // The relay closed: usually the process just ended. Its exit record follows within moments.
      if (attempt?.exit === null && sdk === 'closed') await attempt.exitSoon(EXIT_SETTLE_MS);
      if (attempt?.exit != null) throw server.exitError(attempt.exit, `while ${what} was running`);
      if (sdk === 'timeout') {
        this.consecutiveTimeouts++;
        const error = timeoutError(err, ctx, this.consecutiveTimeouts);
        server.onCallFailed(error, started);
        if (server.recycleAfterTimeouts > 0 && this.consecutiveTimeouts >= server.recycleAfterTimeouts) {
          const why = `recycled after ${this.consecutiveTimeouts} consecutive tool-call timeouts`;
          server.log(`${this.consecutiveTimeouts} tool calls in a row timed out: recycling the server`);
          attempt?.fail({ error: new BoxError('TOOL_TIMEOUT', 'tool_call', why) });
        }
        throw error;
      }
      const { error, relayed } = callError(err, ctx);
      if (!relayed) server.onCallFailed(error, started);
      throw error;
    }
  }
}
