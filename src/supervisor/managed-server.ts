/**
 * One supervised server: its state, its lifecycle loop (one Attempt per try, restarts by policy)
 * and its tool calls. The state's checks and events are in lifecycle-state.ts, an attempt's start
 * and watch in start-attempt.ts, what a failed call means in call-guard.ts, the status it shows in
 * server-status.ts, the record in failure-record.ts.
 *
 *   box_unavailable → session_create → workspace_stage → dep_install → process_start
 *   → relay_connect → mcp_init → ready → (runtime | tool_call failures) → backoff → …
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedServer } from '../config/resolve-server.js';
import { BoxError } from '../errors/box-error.js';
import type { DiskUsage } from '../runtime/types.js';
import { delay, untilAborted } from '../util/abort.js';
import type { Attempt } from './attempt.js';
import { notReadyError } from './call-error.js';
import { CallGuard } from './call-guard.js';
import { quotaError, type DiskTarget, type DiskWatched } from './disk-watch.js';
import { serverFailureRecord, type Failure } from './failure-record.js';
import { LifecycleState } from './lifecycle-state.js';
import { Redactor, secretValues, urlCredentials } from './redactor.js';
import { RetryBudget } from './retry-budget.js';
import type { ServerHost } from './server-host.js';
import { ServerLog } from './server-log.js';
import { serverStatus } from './server-status.js';
import { exitError, startAttempt, startFailure, watchReady, type AttemptSlot } from './start-attempt.js';
import type { IdentityHolder, StartContext } from './start-phases.js';
import type { ServerStatus } from './types.js';

export type { ServerHost } from './server-host.js';

/** Longer than a signalled exit takes to classify (the container-death settle of the runtime). */
const QUOTA_EXIT_SETTLE_MS = 3000;

export class ManagedServer implements DiskWatched {
  readonly name: string;
  readonly log: ServerLog;
  private readonly budget: RetryBudget;
  private readonly redactor: Redactor;
  private readonly identity: IdentityHolder = { current: null };
  private readonly ctx: StartContext;
  private readonly calls: CallGuard;
  private readonly slot: AttemptSlot = { current: () => this.attempt, adopt: (a) => (this.attempt = a) };
  private readonly lifecycle: LifecycleState;
  private restarts = 0;
  private attempt: Attempt | null = null;
  private loop: Promise<void> | null = null;
  private loopController: AbortController | null = null;
  private readyAt: number | undefined;
  private toolsCount: number | undefined;
  private installTaskId: string | undefined;

  constructor(
    private readonly spec: ResolvedServer,
    private readonly host: ServerHost,
  ) {
    this.name = spec.name;
    this.budget = new RetryBudget(spec.restart);
    this.redactor = new Redactor([
      ...secretValues(spec.env, spec.secretEnv),
      ...urlCredentials([spec.install.indexUrl, spec.install.npmRegistry, ...(spec.install.extraIndexUrls ?? [])]),
      ...host.secrets,
    ]);
    const redact = (t: string): string => this.redactor.redact(t);
    this.log = new ServerLog(host.logCapacity, redact, host.onLogLine, () => this.redactor.maxLength);
    this.lifecycle = new LifecycleState(this.name, (event) => host.emit(event), this.log);
    if (host.seed !== undefined) {
      this.log.seed(host.seed.logs);
      this.lifecycle.error = host.seed.lastFailure;
    }
    this.ctx = {
      name: this.name,
      spec,
      host,
      log: this.log,
      identity: this.identity,
      redact,
      setPhase: (phase) => this.lifecycle.setPhase(phase),
      phase: () => this.lifecycle.phase,
      state: () => this.lifecycle.state,
      onInstallTask: (id) => (this.installTaskId = id),
    };
    this.calls = new CallGuard({
      name: this.name,
      toolTimeoutMs: spec.toolTimeoutMs,
      recycleAfterTimeouts: spec.recycleAfterTimeouts,
      redact,
      log: (line) => this.log.line('lifecycle', line),
      exitError: (exit, context) => exitError(this.ctx, exit, 'runtime', context),
      onCallFailed: (error, startedAt) => {
        const info = { retryable: true, attempt: 0, maxAttempts: this.budget.maxAttempts, startedAt };
        this.lifecycle.error = serverFailureRecord(this.ctx, { error }, info);
      },
    });
  }

  get client(): Client | undefined {
    return this.lifecycle.state === 'ready' ? (this.attempt?.client ?? undefined) : undefined;
  }

  status(): ServerStatus {
    const a = this.attempt;
    return serverStatus({
      name: this.name,
      lifecycle: this.lifecycle,
      clientMode: this.spec.client,
      attempt: a,
      identity: this.identity.current?.identity ?? null,
      relayUrl: a?.proc != null ? this.host.relayUrl(a.session, this.name) : null,
      readyAt: this.readyAt,
      restarts: this.restarts,
      tools: this.toolsCount,
      installTaskId: this.installTaskId,
    });
  }

  /** Starts the lifecycle loop (no-op while it runs). */
  start(): void {
    if (this.loop !== null) return;
    if (this.spec.disabled) {
      this.lifecycle.set('stopped');
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
    this.lifecycle.set('stopped');
  }

  async restart(): Promise<void> {
    await this.stop('restarting on request');
    this.budget.reset();
    this.lifecycle.error = undefined;
    this.restarts++;
    this.start();
  }

  /** Stops and deletes the server's workspace and identity (the shared session stays). */
  async remove(): Promise<void> {
    await this.stop('removed');
    await this.clearFolders();
  }

  async listTools(opts: { signal?: AbortSignal } = {}): Promise<Tool[]> {
    const tools = await this.calls.listTools(this.attempt, this.readyClient('tools/list'), opts);
    this.toolsCount = tools.length;
    return tools;
  }

  async callTool(
    tool: string,
    args: Record<string, unknown> = {},
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<CallToolResult> {
    return this.calls.callTool(this.attempt, this.readyClient(`tools/call ${tool}`), { tool, args, ...opts });
  }

  diskTarget(): DiskTarget | null {
    const held = this.identity.current;
    if (this.lifecycle.state !== 'ready' || this.attempt?.proc?.running !== true || held === null) return null;
    return { session: held.session, identity: held.identity, quota: this.spec.disk };
  }

  /** Its folders hold more than `box.diskMb` / `box.diskFiles`: stopped, and cleared before the next start. */
  onDiskOverQuota(usage: DiskUsage, target: DiskTarget): void {
    const attempt = this.attempt;
    const current = (): boolean =>
      this.lifecycle.state === 'ready' &&
      this.attempt === attempt &&
      this.identity.current?.identity === target.identity;
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
        failure = await untilAborted(attempt.ended, signal);
      } catch (err) {
        failure = signal.aborted ? null : await startFailure(this.ctx, err, this.attempt?.session);
      }
      if (failure === null || signal.aborted) return;
      await this.attempt?.close(failure.error.message);
      if (failure.error.code === 'DISK_QUOTA_EXCEEDED') await this.clearFolders();
      const decision = this.budget.decide(
        failure,
        (retryable) => serverFailureRecord(this.ctx, failure, { retryable, attempt: 0, maxAttempts: 0, startedAt }),
        { wasReady, containerId: this.attempt?.session.info.containerId ?? null },
      );
      this.lifecycle.error = decision.record;
      const { phase, code, message } = decision.record;
      this.log.line(
        'lifecycle',
        `failed in ${phase} (${code}): ${message}` +
          `${decision.retry ? `; retrying in ${decision.delayMs} ms` : '; not retrying'}`,
      );
      if (!decision.retry) {
        this.lifecycle.set('failed');
        return;
      }
      this.lifecycle.set('backoff');
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
    this.calls.reset();
    this.toolsCount = undefined;
    this.lifecycle.set('starting', 'box_unavailable');
    const { attempt, tools } = await startAttempt(this.ctx, this.slot, signal);
    this.toolsCount = tools;
    this.readyAt = Date.now();
    this.budget.onReady(this.readyAt);
    this.lifecycle.set('ready');
    this.log.line('lifecycle', `ready${this.toolsCount === undefined ? '' : ` (${this.toolsCount} tools)`}`);
    watchReady(this.ctx, this.slot, attempt);
    return attempt;
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

  private readyClient(what: string): Client {
    const client = this.client;
    if (client === undefined) throw notReadyError(what, this.name, this.spec.client, this.lifecycle.state);
    return client;
  }
}
