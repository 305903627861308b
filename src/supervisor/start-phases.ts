/**
 * The start phases of one attempt, each a function of the attempt's context and the stop signal,
 * each stamping its phase on what it throws:
 *
 *   box_unavailable → session_create → workspace_stage → dep_install → process_start
 *   (→ relay_connect → mcp_init, in client-connect.ts)
 *
 * Staging is composed in stage-server.ts; the install is install/'s.
 */
import { BoxError, isBoxError, type ServerPhase } from '../errors/box-error.js';
import type { ResolvedServer } from '../config/resolve-server.js';
import { activationEnv, activationPathPrefix, type InstallPaths, type InstallPlan } from '../install/detect-install.js';
import {
  BASE_PATH,
  installDependencies,
  type DepFingerprints,
  type StagedWorkspace,
} from '../install/install-dependencies.js';
import { serverEnv } from '../install/server-env.js';
import type { Identity, ManagedProcess, ProcessExit, ProcessPrelude, Session } from '../runtime/types.js';
import { resolveHostFolder, rewriteForContainer } from '../workspace/host-folder.js';
import { checkFolderRules, checkHostPolicy } from '../workspace/host-policy.js';
import type { Attempt } from './attempt.js';
import { exitFailure } from './exit-failure.js';
import { planStage, preludeStage, stagePlanned, type StageWorkspaceInput } from './stage-server.js';
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

/** The server's folder: policy-checked again at every stage (it, or a link on its path, may have been swapped). */
function serverFolder(ctx: StartContext): { hostPath: string | null; cmd: ServerCommand } {
  const { spec } = ctx;
  const own = { command: spec.command, args: spec.args, ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }) };
  const folder = resolveHostFolder({ ...own, hostPath: spec.hostPath }, ctx.host.configDir);
  const hostPath =
    folder.hostPath === null ? null : checkHostPolicy(folder.hostPath, { allowedRoots: spec.allowedRoots });
  if (hostPath !== null && ctx.host.folderRules !== undefined)
    checkFolderRules(hostPath, ctx.host.folderRules(spec.allowedRoots));
  return { hostPath, cmd: own };
}

interface ServerCommand {
  command: string;
  args: string[];
  cwd?: string;
}

/**
 * workspace_stage → dep_install → process_start. A folder small enough to hold in memory (nearly every server) is
 * staged by the server's own exec, as its prelude: one exec where there were two (an exec costs ~75 ms before its
 * first instruction runs on this engine, a third of a cold start). When the plan needs dependencies that are not
 * installed yet, the prelude stops after staging, and the install and a plain start follow.
 */
export async function stageAndStart(
  ctx: StartContext,
  attempt: Attempt,
  hooks: ProcessHooks,
  signal: AbortSignal,
): Promise<void> {
  const { session } = attempt;
  const prepared = await inPhase(ctx, 'workspace_stage', async () => {
    const { hostPath, cmd } = serverFolder(ctx);
    const identity = await identityIn(ctx, session, signal);
    const input: StageWorkspaceInput = {
      session,
      identity,
      hostPath,
      limits: ctx.spec.stageLimits,
      caCertsFile: ctx.spec.caCertsFile,
      installOptions: ctx.spec.install,
      signal,
    };
    const planned = await planStage(input);
    const run =
      hostPath === null
        ? { command: cmd.command, args: cmd.args, cwd: cmd.cwd ?? identity.workspace }
        : rewriteForContainer(cmd, hostPath, identity.workspace);
    return { identity, input, planned, run, prelude: await preludeStage(input, planned) };
  });
  const { identity, run } = prepared;
  let staged: StagedWorkspace;
  if (prepared.prelude === null) {
    staged = await inPhase(ctx, 'workspace_stage', () => stagePlanned(prepared.input, prepared.planned));
    logStaged(ctx, staged);
  } else {
    const { planned, prelude, staged: stagedBy } = prepared.prelude;
    const env = processEnv(ctx, planned.plan, planned.fingerprints, planned.paths);
    const proc = await inPhase(ctx, 'workspace_stage', () =>
      startProcess(ctx, session, identity, run, env, signal, prelude),
    );
    staged = await inPhase(ctx, 'workspace_stage', async () => {
      try {
        return stagedBy(proc.prelude ?? { status: 'failed', output: [], exitCode: null, durationMs: 0 });
      } catch (err) {
        // Staged but refused (a manifest changed meanwhile): the command it already started goes too.
        if (proc.running) await proc.stop({ eofGraceMs: 0, termGraceMs: 1000 });
        throw err;
      }
    });
    logStaged(ctx, staged);
    if (proc.prelude?.status === 'ran') {
      await inPhase(ctx, 'dep_install', async () => ctx.log.line('lifecycle', 'dependencies up to date (0 ms)'));
      await inPhase(ctx, 'process_start', async () => adoptProcess(ctx, attempt, proc, identity, hooks));
      return;
    }
  }
  // No prelude, or one that stopped after staging because dependencies must be installed first.
  const env = await installServer(ctx, session, identity, staged, signal);
  await inPhase(ctx, 'process_start', async () => {
    const proc = await startProcess(ctx, session, identity, run, env, signal);
    adoptProcess(ctx, attempt, proc, identity, hooks);
  });
}

function logStaged(ctx: StartContext, staged: StagedWorkspace): void {
  const { stage } = staged;
  for (const d of stage.dropped) ctx.log.line('lifecycle', `staging dropped ${d.rel}: ${d.reason}`);
  ctx.log.line('lifecycle', `staged ${stage.files} files (${stage.bytes} bytes) in ${stage.durationMs} ms`);
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

/** The process's environment: what the plan activates (venv, node bins, CA), then the server's own. */
function processEnv(
  ctx: StartContext,
  plan: InstallPlan | null,
  fps: DepFingerprints,
  paths: InstallPaths,
): Record<string, string> {
  const install = ctx.spec.install;
  return serverEnv(
    activationEnv(plan, fps, paths, BASE_PATH, install),
    activationPathPrefix(plan, fps, paths),
    ctx.spec.env,
  );
}

/** dep_install: installs what the staged manifests ask for (or nothing); the process's environment. */
function installServer(
  ctx: StartContext,
  session: Session,
  identity: Identity,
  staged: StagedWorkspace,
  signal: AbortSignal,
): Promise<Record<string, string>> {
  return inPhase(ctx, 'dep_install', async () => {
    const installed = await installDependencies({
      session,
      identity,
      staged,
      installOptions: ctx.spec.install,
      timeoutMs: ctx.spec.installTimeoutMs,
      tasks: ctx.host.tasks,
      subject: ctx.name,
      signal,
      onTask: (id: string) => {
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

function startProcess(
  ctx: StartContext,
  session: Session,
  identity: Identity,
  run: ServerCommand,
  env: Record<string, string>,
  signal: AbortSignal,
  prelude?: ProcessPrelude,
): Promise<ManagedProcess> {
  return session.startProcess({
    id: ctx.name,
    identity,
    cmd: [run.command, ...run.args],
    ...(run.cwd === undefined ? {} : { cwd: run.cwd }),
    env,
    onStderr: (chunk) => ctx.log.write('stderr', chunk.toString('utf8')),
    ...(ctx.spec.processLimit === undefined ? {} : { processLimit: ctx.spec.processLimit }),
    fileSizeLimitBytes: ctx.spec.disk.maxBytes,
    ...(prelude === undefined ? {} : { prelude }),
    signal,
  });
}

/** process_start: the attempt holds the running process, its stdio behind a relay. */
function adoptProcess(
  ctx: StartContext,
  attempt: Attempt,
  proc: ManagedProcess,
  identity: Identity,
  hooks: ProcessHooks,
): void {
  const { session } = attempt;
  attempt.proc = proc;
  void proc.exited.then((exit) => hooks.onExit(exit));
  attempt.relay = ctx.host.relays.register(session.info.name, ctx.name, proc, {
    onNonJsonLine: (preview, bytes) =>
      ctx.log.line('stdout', bytes > preview.length ? `${preview} … [${bytes} bytes in all]` : preview),
    onStdoutClosed: () => hooks.onStdoutClosed(),
    onEvent: (message) => ctx.log.line('lifecycle', `relay: ${message}`),
  });
  ctx.log.line('lifecycle', `process started (pid ${proc.pid} in ${session.info.name}, uid ${identity.uid})`);
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
