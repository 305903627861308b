/**
 * The start phases of one attempt, each a function of the attempt's context and the stop signal,
 * each stamping its phase on what it throws:
 *
 *   box_unavailable → session_create → workspace_stage → dep_install → process_start
 *   (→ relay_connect → mcp_init, in client-connect.ts)
 */
import { BoxError, isBoxError, type ServerPhase } from '../errors/box-error.js';
import type { ResolvedServer } from '../config/resolve-server.js';
import { installDependencies, stageWorkspace, type StagedWorkspace } from '../install/prepare-workspace.js';
import { serverEnv } from '../install/server-env.js';
import type { Identity, ManagedProcess, ProcessExit, Session } from '../runtime/types.js';
import { resolveHostFolder, rewriteForContainer } from '../workspace/host-folder.js';
import { checkFolderRules, checkHostPolicy } from '../workspace/host-policy.js';
import type { Attempt } from './attempt.js';
import { exitFailure } from './exit-failure.js';
import type { ServerHost } from './server-host.js';
import type { ServerLog } from './server-log.js';
import type { ServerState } from './types.js';

/** The server's identity, kept across attempts (same uid and folders) until released. */
export interface IdentityHolder {
  current: { session: Session; identity: Identity } | null;
}

export interface StartContext {
  name: string;
  spec: ResolvedServer;
  host: ServerHost;
  log: ServerLog;
  identity: IdentityHolder;
  redact: (text: string) => string;
  setPhase(phase: ServerPhase): void;
  phase(): ServerPhase | undefined;
  state(): ServerState;
  onInstallTask(id: string): void;
}

/** Runs `work` as `phase`: an error of no particular phase (`runtime`) or no BoxError at all is stamped with it. */
export async function inPhase<T>(ctx: StartContext, phase: ServerPhase, work: () => Promise<T>): Promise<T> {
  ctx.setPhase(phase);
  try {
    return await work();
  } catch (err) {
    throw stamped(err, phase);
  }
}

export function stamped(err: unknown, phase: ServerPhase): BoxError {
  if (!isBoxError(err))
    return new BoxError('INTERNAL_ERROR', phase, err instanceof Error ? err.message : String(err), { cause: err });
  if (err.phase !== 'runtime' || phase === 'runtime') return err;
  return new BoxError(err.code, phase, err.message, { cause: err.cause, details: { ...err.details } });
}

/** box_unavailable, session_create: the engine answers, and a session for the server's profile runs. */
export async function openSession(ctx: StartContext, signal: AbortSignal): Promise<Session> {
  await inPhase(ctx, 'box_unavailable', async () => {
    if (!ctx.host.boxEnabled) {
      throw new BoxError(
        'BOX_DISABLED',
        'box_unavailable',
        'Sandboxing is disabled by config (box.enabled: false); mcp-box never runs servers on the host',
      );
    }
    await ctx.host.runtime.ping({ signal, maxAgeMs: 2000 });
  });
  return inPhase(ctx, 'session_create', () =>
    ctx.host.runtime.ensureSession(ctx.spec.profile, { signal, persistent: ctx.host.persistentSessions }),
  );
}

export interface StagedServer {
  identity: Identity;
  staged: StagedWorkspace;
  /** The command line as it runs in the container. */
  cmd: { command: string; args: string[]; cwd: string };
}

/** workspace_stage: the folder passes the policy (again: it may have been swapped), the identity, the stage. */
export function stageServer(ctx: StartContext, session: Session, signal: AbortSignal): Promise<StagedServer> {
  return inPhase(ctx, 'workspace_stage', async () => {
    const { spec } = ctx;
    const folder = resolveHostFolder(
      {
        command: spec.command,
        args: spec.args,
        ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
        hostPath: spec.hostPath,
      },
      ctx.host.configDir,
    );
    const hostPath =
      folder.hostPath === null ? null : checkHostPolicy(folder.hostPath, { allowedRoots: spec.allowedRoots });
    // Again at every stage: a folder (or a link on its path) swapped since it was added.
    if (hostPath !== null && ctx.host.folderRules !== undefined)
      checkFolderRules(hostPath, ctx.host.folderRules(spec.allowedRoots));
    const identity = await identityIn(ctx, session, signal);
    const staged = await stageWorkspace({
      session,
      identity,
      hostPath,
      limits: spec.stageLimits,
      caCertsFile: spec.caCertsFile,
      installOptions: spec.install,
      signal,
    });
    for (const d of staged.stage.dropped) ctx.log.line('lifecycle', `staging dropped ${d.rel}: ${d.reason}`);
    ctx.log.line(
      'lifecycle',
      `staged ${staged.stage.files} files (${staged.stage.bytes} bytes) in ${staged.stage.durationMs} ms`,
    );
    const cmd =
      hostPath === null
        ? { command: spec.command, args: spec.args, cwd: spec.cwd ?? identity.workspace }
        : rewriteForContainer(
            { command: spec.command, args: spec.args, ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }) },
            hostPath,
            identity.workspace,
          );
    return { identity, staged, cmd };
  });
}

/**
 * The server's identity in `session`: the one it had (same session, or moved over with the volume), else a new
 * slot.
 */
async function identityIn(ctx: StartContext, session: Session, signal: AbortSignal): Promise<Identity> {
  const held = ctx.identity.current;
  if (held !== null && held.session !== session) {
    if (session.holds(held.identity)) {
      // A replacement session re-attached the dead one's volume: same uid, same folders.
      ctx.identity.current = { session, identity: held.identity };
    } else {
      await held.session.releaseIdentity(held.identity).catch(() => undefined);
      ctx.identity.current = null;
    }
  }
  // The slot only: the stage creates the identity's folders in the same exec.
  ctx.identity.current ??= { session, identity: await session.createIdentity({ signal, provision: false }) };
  return ctx.identity.current.identity;
}

/** dep_install: installs what the staged manifests ask for (or nothing); the process's environment. */
export function installServer(
  ctx: StartContext,
  session: Session,
  server: StagedServer,
  signal: AbortSignal,
): Promise<Record<string, string>> {
  return inPhase(ctx, 'dep_install', async () => {
    const installed = await installDependencies({
      session,
      identity: server.identity,
      staged: server.staged,
      installOptions: ctx.spec.install,
      timeoutMs: ctx.spec.installTimeoutMs,
      tasks: ctx.host.tasks,
      subject: ctx.name,
      signal,
      onTask: (id) => {
        ctx.onInstallTask(id);
        ctx.log.line('lifecycle', `installing dependencies (task ${id})`);
      },
    });
    ctx.log.line(
      'lifecycle',
      installed.skipped
        ? `dependencies up to date (${installed.durationMs} ms)`
        : `installed ${installed.installed.join(' + ')} dependencies in ${installed.durationMs} ms`,
    );
    return serverEnv(installed.env, installed.pathPrefix, ctx.spec.env);
  });
}

/** process_start: the process runs as the server's uid, its stdio behind a relay. */
export function startServerProcess(
  ctx: StartContext,
  attempt: Attempt,
  server: StagedServer,
  env: Record<string, string>,
  hooks: ProcessHooks,
  signal: AbortSignal,
): Promise<ManagedProcess> {
  return inPhase(ctx, 'process_start', async () => {
    const { session } = attempt;
    const proc = await session.startProcess({
      id: ctx.name,
      identity: server.identity,
      cmd: [server.cmd.command, ...server.cmd.args],
      cwd: server.cmd.cwd,
      env,
      onStderr: (chunk) => ctx.log.write('stderr', chunk.toString('utf8')),
      ...(ctx.spec.processLimit === undefined ? {} : { processLimit: ctx.spec.processLimit }),
      fileSizeLimitBytes: ctx.spec.disk.maxBytes,
      signal,
    });
    attempt.proc = proc;
    void proc.exited.then((exit) => hooks.onExit(exit));
    attempt.relay = ctx.host.relays.register(session.info.name, ctx.name, proc, {
      onNonJsonLine: (preview, bytes) =>
        ctx.log.line('stdout', bytes > preview.length ? `${preview} … [${bytes} bytes in all]` : preview),
      onStdoutClosed: () => hooks.onStdoutClosed(),
      onEvent: (message) => ctx.log.line('lifecycle', `relay: ${message}`),
    });
    ctx.log.line('lifecycle', `process started (pid ${proc.pid} in ${session.info.name}, uid ${server.identity.uid})`);
    return proc;
  });
}

export interface ProcessHooks {
  onExit(exit: ProcessExit): void;
  onStdoutClosed(): void;
}

/**
 * Runs `work` unless the attempt's process ends first. When `work` fails, a process that is ending
 * wins: its exit record (127, OOM, …) says more than the relay error it caused.
 */
export async function raceExit<T>(ctx: StartContext, attempt: Attempt, work: Promise<T>, settleMs: number): Promise<T> {
  const proc = attempt.proc;
  if (proc === null) return work;
  const fail = (exit: ProcessExit): BoxError =>
    exitFailure(exit, {
      name: ctx.name,
      state: ctx.state(),
      phase: ctx.phase() ?? 'process_start',
      diskQuotaBytes: ctx.spec.disk.maxBytes,
      redact: ctx.redact,
    });
  const exited = proc.exited.then((exit): never => {
    throw fail(exit);
  });
  try {
    return await Promise.race([work, exited]);
  } catch (err) {
    const exit = await attempt.exitSoon(settleMs);
    if (exit !== null) throw fail(exit);
    throw err;
  }
}
