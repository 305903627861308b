/**
 * A scripted stdio MCP server that runs in memory on a fake process's stdin/stdout: one JSON line
 * per message, the way a real stdio server talks. It answers `initialize`, `tools/list`,
 * `tools/call` and `ping`, ignores notifications (`notifications/initialized`,
 * `notifications/cancelled`), and answers anything else with -32601.
 *
 * What it does is a `FakeServerScript`: per test, a server can exit (with a code, a signal, OOM)
 * after a time or on a tool call, never answer `initialize`, `ping` or a tool call, close its
 * stdout and keep running, write stderr, or ignore stdin EOF (so a stop escalates to SIGTERM).
 *
 * Default tools (override or add with `script.tools`):
 *   echo {text}          → the text
 *   fail {message, code} → a JSON-RPC error (code -32602 unless given, the message)
 *   hang                 → never answers
 *   exit {code, signal}  → writes "exiting …" to stderr and ends (no answer)
 *   oom                  → ends as the OOM killer ends a process (137, SIGKILL, reason 'oom')
 *   close_stdout         → stops writing stdout, stays alive (never answers)
 */
import type { Readable, Writable } from 'node:stream';
import type { ExitReason } from '../../src/runtime/types.js';

/** How a fake process ends. `signal` implies exit code 128 + n; `reason` defaults to 'exited'. */
export interface FakeExit {
  code?: number | null;
  signal?: FakeSignal | null;
  reason?: ExitReason;
  /** Written to stderr just before the end (it shows in the exit record's stderr tail). */
  stderr?: string;
}

export const SIGNAL_NUMBERS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
  SIGXFSZ: 25,
} as const;
export type FakeSignal = keyof typeof SIGNAL_NUMBERS;

/** What a tool call does. */
export type ToolReply =
  /** Answered with this result (`text` is shorthand for one text content item). */
  | { text: string; isError?: boolean }
  /** Answered with a JSON-RPC error. */
  | { error: { code: number; message: string } }
  /** Never answered (the caller's timeout decides). */
  | { hang: true }
  /** The process ends instead of answering. */
  | { exit: FakeExit }
  /** The process closes its stdout and keeps running: nothing it writes reaches anyone. */
  | { closeStdout: true };

export type ToolHandler = (args: Record<string, unknown>, call: { attempt: number }) => ToolReply;

/** The behaviour of one fake server process. Every field is optional: {} is a healthy server. */
export interface FakeServerScript {
  /** Tools by name, merged over the default tools. */
  tools?: Record<string, ToolHandler>;
  /**
   * 'ignore': never answers initialize; `{ code, message }`: answers it with that JSON-RPC error;
   * `{ exit }`: the process ends when initialize arrives (a server that dies while it starts).
   */
  initialize?: 'answer' | 'ignore' | { code: number; message: string } | { exit: FakeExit };
  /** 'ignore': never answers ping (a hung server). */
  ping?: 'answer' | 'ignore';
  /** Written to stderr as soon as the process starts. */
  stderr?: string;
  /**
   * Ends the process `afterMs` after it started. 0: at once, before `startProcess` returns (the
   * exit record is known before anyone could talk to it).
   */
  exit?: FakeExit & { afterMs: number };
  /** false: stdin EOF does not end the process (a stop has to escalate). Default true. */
  exitOnStdinEnd?: boolean;
  /** Answer delay for every request, in ms. Default 0. */
  answerDelayMs?: number;
}

/** What the scripted server may do to the process it runs in. */
export interface FakeStdioHost {
  readonly stdin: Readable;
  readonly stdout: Writable;
  writeStderr(text: string): void;
  exit(how: FakeExit): void;
  closeStdout(): void;
  /** False once the process's stdout is closed or it ended (writes are dropped). */
  stdoutOpen(): boolean;
  /** 1-based start count of this process id (the first start is attempt 1). */
  readonly attempt: number;
  /** Every request and notification as it arrives (by method), before it is answered. */
  onMessage(method: string): void;
}

const text = (t: string, isError = false): Record<string, unknown> => ({
  content: [{ type: 'text', text: t }],
  ...(isError ? { isError: true } : {}),
});

export const DEFAULT_TOOLS: Record<string, ToolHandler> = {
  echo: (a) => ({ text: String(a.text ?? '') }),
  fail: (a) => ({
    error: { code: typeof a.code === 'number' ? a.code : -32602, message: String(a.message ?? 'the tool failed') },
  }),
  hang: () => ({ hang: true }),
  exit: (a) => ({
    exit: {
      ...(typeof a.code === 'number' ? { code: a.code } : {}),
      ...(typeof a.signal === 'string' ? { signal: a.signal as FakeSignal } : {}),
      stderr: `exiting with ${typeof a.signal === 'string' ? a.signal : `code ${String(a.code ?? 0)}`} on request\n`,
    },
  }),
  oom: () => ({ exit: { signal: 'SIGKILL', reason: 'oom', stderr: 'allocating\n' } }),
  close_stdout: () => ({ closeStdout: true }),
};

interface Request {
  jsonrpc: '2.0';
  id?: string | number;
  method?: string;
  params?: Record<string, unknown>;
}

/**
 * Runs `script` on the host's stdio until the process ends. Returns a function that stops it
 * (removes its listeners; the process itself is the host's).
 */
export function runFakeMcpServer(host: FakeStdioHost, script: FakeServerScript): () => void {
  const tools = { ...DEFAULT_TOOLS, ...script.tools };
  let buffered = '';
  let timer: NodeJS.Timeout | null = null;
  const answerTimers = new Set<NodeJS.Timeout>();

  const send = (message: Record<string, unknown>): void => {
    if (!host.stdoutOpen() || host.stdout.writableEnded) return;
    host.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
  };
  const answer = (message: Record<string, unknown>): void => {
    const ms = script.answerDelayMs ?? 0;
    if (ms <= 0) return send(message);
    const t = setTimeout(() => {
      answerTimers.delete(t);
      send(message);
    }, ms);
    answerTimers.add(t);
  };

  const onRequest = (req: Request): void => {
    if (req.method === undefined) return; // a stray answer
    host.onMessage(req.method);
    if (req.id === undefined) return; // a notification: nothing to answer
    const id = req.id;
    switch (req.method) {
      case 'initialize': {
        const how = script.initialize ?? 'answer';
        if (how === 'ignore') return;
        if (typeof how === 'object') return 'exit' in how ? host.exit(how.exit) : answer({ id, error: how });
        const protocolVersion =
          typeof req.params?.protocolVersion === 'string' ? req.params.protocolVersion : '2025-06-18';
        return answer({
          id,
          result: { protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'fake-mcp', version: '1.0.0' } },
        });
      }
      case 'ping':
        if (script.ping === 'ignore') return;
        return answer({ id, result: {} });
      case 'tools/list':
        return answer({
          id,
          result: { tools: Object.keys(tools).map((name) => ({ name, inputSchema: { type: 'object' } })) },
        });
      case 'tools/call': {
        const name = String(req.params?.name ?? '');
        const handler = tools[name];
        if (handler === undefined) return answer({ id, error: { code: -32602, message: `Unknown tool: ${name}` } });
        const reply = handler((req.params?.arguments as Record<string, unknown> | undefined) ?? {}, {
          attempt: host.attempt,
        });
        if ('text' in reply) return answer({ id, result: text(reply.text, reply.isError) });
        if ('error' in reply) return answer({ id, error: reply.error });
        if ('exit' in reply) return host.exit(reply.exit);
        if ('closeStdout' in reply) return host.closeStdout();
        return; // hang
      }
      default:
        return answer({ id, error: { code: -32601, message: `Method not found: ${req.method}` } });
    }
  };

  const onData = (chunk: Buffer): void => {
    buffered += chunk.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        host.writeStderr(`fake-mcp: not JSON: ${line.slice(0, 80)}\n`);
        continue;
      }
      for (const message of Array.isArray(parsed) ? parsed : [parsed]) onRequest(message as Request);
    }
  };
  const onEnd = (): void => {
    if (script.exitOnStdinEnd !== false) host.exit({ code: 0 });
  };

  host.stdin.on('data', onData);
  host.stdin.once('end', onEnd);
  if (script.stderr !== undefined) host.writeStderr(script.stderr);
  if (script.exit !== undefined) {
    const { afterMs, ...how } = script.exit;
    if (afterMs <= 0) host.exit(how);
    else timer = setTimeout(() => host.exit(how), afterMs);
  }

  return () => {
    if (timer !== null) clearTimeout(timer);
    for (const t of answerTimers) clearTimeout(t);
    answerTimers.clear();
    host.stdin.removeListener('data', onData);
    host.stdin.removeListener('end', onEnd);
  };
}
