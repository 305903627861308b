/**
 * One supervised server: its state, its lifecycle loop (one Attempt per try, restarts by policy)
 * and its tool calls. The phases of a start are in start-phases.ts and client-connect.ts, health
 * in health.ts, what an exit means in exit-failure.ts, the record in failure-record.ts.
 *
 *   box_unavailable → session_create → workspace_stage → dep_install → process_start
 *   → relay_connect → mcp_init → ready → (runtime | tool_call failures) → backoff → …
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedServer } from '../config/resolve-server.js';
import { BoxError, isBoxError, type ServerPhase } from '../errors/box-error.js';
import type { DiskUsage, ProcessExit } from '../runtime/types.js';
import { delay } from '../util/abort.js';
import { Attempt } from './attempt.js';
import { callError, sdkFailure, timeoutError } from './call-error.js';
import { connectClient, reconnectClient } from './client-connect.js';
import { quotaError, type DiskTarget, type DiskWatched } from './disk-watch.js';
import { EARLY_EXIT_MS, exitFailure } from './exit-failure.js';
import { failureRecord, STDERR_TAIL_LINES, type Failure } from './failure-record.js';
import { EXIT_SETTLE_MS, startPing, watchConnection } from './health.js';
import { Redactor, secretValues, urlCredentials } from './redactor.js';
import { RetryBudget } from './retry-budget.js';
import type { ServerHost } from './server-host.js';
import { sessionDeathOr } from './session-death.js';
import { ServerLog } from './server-log.js';
import { checkTransition } from './server-states.js';
import {
  installServer,
  openSession,
  raceExit,
  stageServer,
  stamped,
  startServerProcess,
  type IdentityHolder,
  type StartContext,
} from './start-phases.js';
import type { FailureRecord, ServerState, ServerStatus } from './types.js';

export type { ServerHost } from './server-host.js';

/** Longer than a signalled exit takes to classify (the container-death settle of the runtime). */
const QUOTA_EXIT_SETTLE_MS = 3000;

export class ManagedServer implements DiskWatched {
  readonly name: string;
  readonly log: ServerLog;
  private readonly spec: ResolvedServer;
  private readonly host: ServerHost;
  private readonly budget: RetryBudget;
  private readonly redactor: Redactor;
  private readonly identity: IdentityHolder = { current: null };
  private readonly ctx: StartContext;
  private state: ServerState = 'pending';
  private phase: ServerPhase | undefined;
  private error: FailureRecord | undefined;
  private restarts = 0;
  private attempt: Attempt | null = null;
  private loop: Promise<void> | null = null;
  private loopController: AbortController | null = null;
  private readyAt: number | undefined;
  private toolsCount: number | undefined;
  private installTaskId: string | undefined;
  private consecutiveTimeouts = 0;

  constructor(spec: ResolvedServer, host: ServerHost) {
    this.spec = spec;
    this.name = spec.name;
    this.host = host;
    this.budget = new RetryBudget(spec.restart);
    this.redactor = new Redactor([
      ...secretValues(spec.env, spec.secretEnv),
      ...urlCredentials([spec.install.indexUrl, spec.install.npmRegistry, ...(spec.install.extraIndexUrls ?? [])]),
      ...host.secrets,
    ]);
    this.log = new ServerLog(
      host.logCapacity,
      (t) => this.redactor.redact(t),
      host.onLogLine,
      () => this.redactor.maxLength,
    );
    if (host.seed !== undefined) {
      this.log.seed(host.seed.logs);
      this.error = host.seed.lastFailure;
    }
    this.ctx = {
      name: this.name,
      spec,
      host,
      log: this.log,
      identity: this.identity,
      redact: (t) => this.redactor.redact(t),
      setPhase: (phase) => this.setPhase(phase),
      phase: () => this.phase,
      state: () => this.state,
      onInstallTask: (id) => (this.installTaskId = id),
    };
  }

  get client(): Client | undefined {
    return this.state === 'ready' ? (this.attempt?.client ?? undefined) : undefined;
  }

  status(): ServerStatus {
    const a = this.attempt;
    const held = this.identity.current;
    const url = a?.proc != null ? this.host.relayUrl(a.session, this.name) : null;
    return {
      name: this.name,
      state: this.state,
      ...(this.phase === undefined ? {} : { phase: this.phase }),
      ...(this.error === undefined ? {} : { error: { ...this.error } }),
      relay: url === null ? null : { url, subprotocol: 'mcp' },
      clientMode: this.spec.client,
      ...(a === null ? {} : { session: a.session.info.name }),
      ...(held === null ? {} : { uid: held.identity.uid, workspace: held.identity.workspace }),
      ...(a?.proc != null && a.proc.running ? { pid: a.proc.pid, startedAt: a.proc.startedAt } : {}),
      ...(this.state === 'ready' && this.readyAt !== undefined
        ? { readyAt: new Date(this.readyAt).toISOString() }
        : {}),
      restarts: this.restarts,
      ...(this.toolsCount === undefined ? {} : { tools: this.toolsCount }),
      ...(this.installTaskId === undefined ? {} : { installTaskId: this.installTaskId }),
    };
  }

  /** Starts the lifecycle loop (no-op while it runs). */
  start(): void {
    if (this.loop !== null) return;
    if (this.spec.disabled) {
      this.setState('stopped');
      return;
    }
    const controller = new AbortController();
    this.loopController = controller;
    this.loop = this.runLoop(controller.signal).finally(() => {
      if (this.loopController === controller) {
        this.loop = null;
        this.loopController = null;
      }
    });
  }

  /** Stops the process and the loop; the workspace and installed dependencies stay. */
  async stop(reason = 'stopped on request'): Promise<void> {
    const loop = this.loop;
    this.loopController?.abort(new BoxError('ABORTED', 'runtime', reason));
    await loop;
    await this.attempt?.close(reason);
    this.setState('stopped');
    this.phase = undefined;
  }

  async restart(): Promise<void> {
    await this.stop('restarting on request');
    this.budget.reset();
    this.error = undefined;
    this.restarts++;
    this.start();
  }

  /** Stops and deletes the server's workspace and identity (the shared session stays). */
  async remove(): Promise<void> {
    await this.stop('removed');
    await this.clearFolders();
  }

  async listTools(opts: { signal?: AbortSignal } = {}): Promise<Tool[]> {
    const client = this.readyClient('tools/list');
    const result = await this.guardCall('tools/list', () =>
      client.listTools(undefined, {
        timeout: this.spec.toolTimeoutMs,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      }),
    );
    this.toolsCount = result.tools.length;
    return result.tools;
  }

  async callTool(
    tool: string,
    args: Record<string, unknown> = {},
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<CallToolResult> {
    const client = this.readyClient(`tools/call ${tool}`);
    const timeout = opts.timeoutMs ?? this.spec.toolTimeoutMs;
    const result = await this.guardCall(
      `tool "${tool}"`,
      () =>
        client.callTool({ name: tool, arguments: args }, undefined, {
          timeout,
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        }),
      timeout,
    );
    this.consecutiveTimeouts = 0;
    return result as CallToolResult;
  }

  diskTarget(): DiskTarget | null {
    const held = this.identity.current;
    if (this.state !== 'ready' || this.attempt?.proc?.running !== true || held === null) return null;
    return { session: held.session, identity: held.identity, quota: this.spec.disk };
  }

  /** Its folders hold more than `box.diskMb` / `box.diskFiles`: stopped, and cleared before the next start. */
  onDiskOverQuota(usage: DiskUsage, target: DiskTarget): void {
    const attempt = this.attempt;
    const current = (): boolean =>
      this.state === 'ready' && this.attempt === attempt && this.identity.current?.identity === target.identity;
    if (attempt === null || !current()) return;
    const error = quotaError(this.name, usage, target.quota);
    void (async () => {
      // A writer the file cap just killed (SIGXFSZ) is ending: its exit is the better record.
      if ((await attempt.exitSoon(QUOTA_EXIT_SETTLE_MS)) !== null || !current()) return;
      attempt.fail({ error });
    })();
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────

  private async runLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const startedAt = Date.now();
      let failure: Failure | null;
      let wasReady = false;
      try {
        const attempt = await this.startAttempt(signal);
        wasReady = true;
        failure = await untilStopped(attempt.ended, signal);
      } catch (err) {
        // Before the attempt has its session, `this.attempt` is the previous one's.
        const failed = this.toFailure(err);
        const phase = failed.error.phase;
        failure = signal.aborted
          ? null
          : await sessionDeathOr(
              failed,
              phase === 'box_unavailable' || phase === 'session_create' ? undefined : this.attempt?.session,
            );
      }
      if (failure === null || signal.aborted) return;
      await this.attempt?.close(failure.error.message);
      if (failure.error.code === 'DISK_QUOTA_EXCEEDED') await this.clearFolders();
      const decision = this.budget.decide(
        failure,
        (retryable) => this.record(failure, { retryable, attempt: 0, maxAttempts: 0, startedAt }),
        {
          wasReady,
          containerId: this.attempt?.session.info.containerId ?? null,
        },
      );
      this.error = decision.record;
      this.log.line(
        'lifecycle',
        `failed in ${this.error.phase} (${this.error.code}): ${this.error.message}` +
          `${decision.retry ? `; retrying in ${decision.delayMs} ms` : '; not retrying'}`,
      );
      if (!decision.retry) {
        this.setState('failed');
        return;
      }
      this.setState('backoff');
      try {
        await delay(decision.delayMs, signal);
      } catch {
        return;
      }
      this.restarts++;
    }
  }

  /** One try, through the phases to ready; returns the ready attempt (whose `ended` ends it). */
  private async startAttempt(signal: AbortSignal): Promise<Attempt> {
    this.consecutiveTimeouts = 0;
    this.toolsCount = undefined;
    this.setState('starting', 'box_unavailable');
    const session = await openSession(this.ctx, signal);
    const attempt = new Attempt(session, this.host.relays, this.name, (line) => this.log.line('lifecycle', line));
    this.attempt = attempt;
    const staged = await stageServer(this.ctx, session, signal);
    const env = await installServer(this.ctx, session, staged, signal);
    await startServerProcess(
      this.ctx,
      attempt,
      staged,
      env,
      { onExit: (exit) => this.onExit(attempt, exit), onStdoutClosed: () => this.onStdoutClosed(attempt) },
      signal,
    );
    if (this.spec.client === 'external') {
      // Health comes from process and engine events; a command that is not there fails here.
      await raceExit(this.ctx, attempt, delay(Math.min(EARLY_EXIT_MS, 500), signal), EXIT_SETTLE_MS);
    } else {
      await connectClient(this.ctx, attempt, signal);
      const tools = await attempt.client?.listTools(undefined, { timeout: this.spec.toolTimeoutMs }).catch(() => null);
      this.toolsCount = tools?.tools.length;
    }
    this.becomeReady(attempt);
    // An exit between the last phase and ready has no one else to report it.
    if (attempt.exit !== null) this.onExit(attempt, attempt.exit);
    return attempt;
  }

  private becomeReady(attempt: Attempt): void {
    this.readyAt = Date.now();
    this.budget.onReady(this.readyAt);
    this.phase = undefined;
    this.setState('ready');
    this.log.line('lifecycle', `ready${this.toolsCount === undefined ? '' : ` (${this.toolsCount} tools)`}`);
    if (this.spec.client !== 'supervisor') return;
    const health = {
      name: this.name,
      isCurrent: () => this.state === 'ready' && this.attempt === attempt,
      log: (line: string) => this.log.line('lifecycle', line),
    };
    startPing(attempt, this.spec.pingIntervalMs, health);
    watchConnection(attempt, { ...health, connect: () => reconnectClient(this.ctx, attempt) });
  }

  private onExit(attempt: Attempt, exit: ProcessExit): void {
    if (this.attempt !== attempt) return;
    attempt.exit = exit;
    // Requests in flight fail now, not after their timeout.
    void attempt.client?.close().catch(() => undefined);
    if (this.state === 'ready')
      attempt.fail({ error: this.exitError(exit, 'runtime'), exit, counts: exit.reason !== 'engine_lost' });
  }

  /** The relay found the process alive with its stdout closed: nothing it does can reach a client. */
  private onStdoutClosed(attempt: Attempt): void {
    if (this.attempt !== attempt || this.state !== 'ready') return;
    attempt.fail({
      error: new BoxError(
        'STDOUT_CLOSED',
        'runtime',
        `"${this.name}" closed its stdout but kept running (pid ${attempt.proc?.pid ?? '?'}): ` +
          'no answer can reach a client; restarting it',
      ),
    });
  }

  /** Deletes the identity and its folders: the next start stages and installs into new ones. */
  private async clearFolders(): Promise<void> {
    const held = this.identity.current;
    this.identity.current = null;
    if (held !== null)
      await held.session
        .releaseIdentity(held.identity)
        .catch((err: unknown) => this.log.line('lifecycle', `failed to release the workspace: ${String(err)}`));
  }

  // ── calls ──────────────────────────────────────────────────────────────────────────────────

  private readyClient(what: string): Client {
    const client = this.client;
    if (client === undefined) {
      const why =
        this.spec.client === 'external' ? 'its MCP client is external (box.client: "external")' : `it is ${this.state}`;
      throw new BoxError('PROCESS_NOT_RUNNING', 'tool_call', `Cannot run ${what} on "${this.name}": ${why}`, {
        details: { state: this.state },
      });
    }
    return client;
  }

  private async guardCall<T>(what: string, call: () => Promise<T>, timeoutMs = this.spec.toolTimeoutMs): Promise<T> {
    const started = Date.now();
    const attempt = this.attempt;
    const client = attempt?.client;
    try {
      return await call();
    } catch (err) {
      const ctx = {
        what,
        server: this.name,
        timeoutMs,
        elapsedMs: Date.now() - started,
        transportGone: client?.transport === undefined,
        redact: (t: string) => this.redactor.redact(t),
      };
      const sdk = sdkFailure(err, ctx);
      // The relay closed: usually the process just ended. Its exit record follows within moments.
      if (attempt?.exit === null && sdk === 'closed') await attempt.exitSoon(EXIT_SETTLE_MS);
      if (attempt?.exit != null) throw this.exitError(attempt.exit, 'runtime', `while ${what} was running`);
      const record = (error: BoxError): FailureRecord =>
        this.record(
          { error },
          { retryable: true, attempt: 0, maxAttempts: this.budget.maxAttempts, startedAt: started },
        );
      if (sdk === 'timeout') {
        this.consecutiveTimeouts++;
        const error = timeoutError(err, ctx, this.consecutiveTimeouts);
        this.error = record(error);
        if (this.spec.recycleAfterTimeouts > 0 && this.consecutiveTimeouts >= this.spec.recycleAfterTimeouts) {
          const why = `recycled after ${this.consecutiveTimeouts} consecutive tool-call timeouts`;
          this.log.line('lifecycle', `${this.consecutiveTimeouts} tool calls in a row timed out: recycling the server`);
          attempt?.fail({ error: new BoxError('TOOL_TIMEOUT', 'tool_call', why) });
        }
        throw error;
      }
      const { error, relayed } = callError(err, ctx);
      if (!relayed) this.error = record(error);
      throw error;
    }
  }

  // ── records ────────────────────────────────────────────────────────────────────────────────

  private exitError(exit: ProcessExit, phase: ServerPhase, context = ''): BoxError {
    return exitFailure(exit, {
      name: this.name,
      state: this.state,
      phase,
      diskQuotaBytes: this.spec.disk.maxBytes,
      redact: (t) => this.redactor.redact(t),
      context,
    });
  }

  private toFailure(err: unknown): Failure {
    // While starting, an error of no particular phase (or no BoxError: a bug) is the running phase's.
    const error =
      this.state === 'starting' && this.phase !== undefined
        ? stamped(err, this.phase)
        : isBoxError(err)
          ? err
          : stamped(err, 'runtime');
    const exit = (error.details.exit as ProcessExit | undefined) ?? undefined;
    return { error, ...(exit === undefined ? {} : { exit }), counts: error.code !== 'ENGINE_UNREACHABLE' };
  }

  private record(
    failure: Failure,
    info: { retryable: boolean; attempt: number; maxAttempts: number; startedAt: number },
  ): FailureRecord {
    return failureRecord(failure, {
      ...info,
      phase: this.phase,
      redact: (t) => this.redactor.redact(t),
      stderrTail: () => this.log.tail('stderr', STDERR_TAIL_LINES).join('\n'),
    });
  }

  private setPhase(phase: ServerPhase): void {
    this.phase = phase;
    this.host.emit({ name: this.name, state: this.state, previous: this.state, phase, at: new Date().toISOString() });
  }

  private setState(state: ServerState, phase?: ServerPhase): void {
    const previous = this.state;
    checkTransition(this.name, previous, state, (err) => this.log.line('lifecycle', `bug: ${err.message}`));
    this.state = state;
    if (phase !== undefined) this.phase = phase;
    if (state === 'ready' || state === 'stopped') this.phase = undefined;
    if (state === 'backoff' || state === 'failed') this.phase = this.error?.phase;
    this.host.emit({
      name: this.name,
      state,
      previous,
      ...(this.phase === undefined ? {} : { phase: this.phase }),
      ...(this.error === undefined || state === 'ready' ? {} : { error: { ...this.error } }),
      at: new Date().toISOString(),
    });
  }
}

/** `ended`'s failure, or null when `signal` aborts first (a stop is no failure). */
async function untilStopped(ended: Promise<Failure>, signal: AbortSignal): Promise<Failure | null> {
  if (signal.aborted) return null;
  let onAbort!: () => void;
  const stopped = new Promise<null>((resolve) => (onAbort = () => resolve(null)));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([ended, stopped]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
