/**
 * The two phases between a session and a started process:
 *  - `stageWorkspace` (workspace_stage): walk, plan the install from the same view, stage, and
 *    check the staged manifests are the ones planned from;
 *  - `installDependencies` (dep_install): skip when the fingerprints are already installed
 *    (no exec at all), otherwise run the install as a task with its own timeout and cancel.
 */
import { DEFAULT_INSTALL_TIMEOUT_MS } from '../defaults.js';
import { BoxError } from '../errors/box-error.js';
import type { Identity, Session } from '../runtime/types.js';
import type { TaskErrorSpec, TaskRegistry } from '../tasks/task-registry.js';
import { emptyWalk, stageFolder, type StageResult } from '../workspace/stage-folder.js';
import { DEFAULT_STAGE_LIMITS, walkFolder, type StageLimits } from '../workspace/walk-folder.js';
import {
  activationEnv,
  activationPathPrefix,
  detectInstallPlan,
  installEnv,
  installFingerprints,
  installScript,
  type InstallOptions,
  type InstallPaths,
  type InstallPlan,
  type ToolVersions,
} from './detect-install.js';
import { assertSameAsStaged, hostFolderView } from './host-view.js';
import { probeTools } from './probe-tools.js';

export { DEFAULT_INSTALL_TIMEOUT_MS };
export const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface StageWorkspaceInput {
  session: Session;
  identity: Identity;
  /** Policy-checked realpath, or null for a server without a folder. */
  hostPath: string | null;
  limits?: StageLimits;
  caCertsFile?: string | null;
  installOptions?: InstallOptions;
  signal?: AbortSignal;
}

export interface StagedWorkspace {
  stage: StageResult;
  plan: InstallPlan | null;
  tools: ToolVersions;
  fingerprints: { python: string | null; node: string | null };
  paths: InstallPaths;
}

export async function stageWorkspace(input: StageWorkspaceInput): Promise<StagedWorkspace> {
  const opts = input.installOptions ?? {};
  const walk =
    input.hostPath === null ? emptyWalk() : await walkFolder(input.hostPath, input.limits ?? DEFAULT_STAGE_LIMITS);
  const tools = await probeTools(input.session);
  const view = hostFolderView(walk);
  const plan = input.hostPath === null ? null : detectInstallPlan(view, tools);
  // Read every manifest through the view: their hashes make the early fingerprint, and each must
  // be staged unchanged.
  for (const rel of [...(plan?.python?.manifests ?? []), ...(plan?.node?.manifests ?? [])]) view.read(rel);
  const early = plan === null ? { python: null, node: null } : installFingerprints(plan, view.readHashes, tools, opts);
  const stage = await stageFolder(input.session, input.identity, {
    hostPath: input.hostPath,
    walk,
    caCertsFile: input.caCertsFile ?? null,
    linkNodeDeps: early.node,
    ...(input.signal === undefined ? {} : { signal: input.signal }),
  });
  assertSameAsStaged(view, stage.hashes);
  const fingerprints =
    plan === null ? { python: null, node: null } : installFingerprints(plan, stage.hashes, tools, opts);
  const paths: InstallPaths = {
    root: input.identity.root,
    workspace: input.identity.workspace,
    caBundle: stage.caBundle,
  };
  return { stage, plan, tools, fingerprints, paths };
}

export interface InstallInput {
  session: Session;
  identity: Identity;
  staged: StagedWorkspace;
  installOptions?: InstallOptions;
  timeoutMs?: number;
  tasks: TaskRegistry;
  /** The server name, for the task record. */
  subject: string;
  signal?: AbortSignal;
  /** Called as soon as an install task exists (so callers can expose its id). */
  onTask?: (taskId: string) => void;
}

export interface InstallOutcome {
  /** True when nothing had to be installed (no project, or fingerprints already installed). */
  skipped: boolean;
  installed: ('python' | 'node')[];
  taskId: string | null;
  durationMs: number;
  /** Environment for the server process (venv, node bins, CA); its PATH is `pathPrefix` + BASE_PATH. */
  env: Record<string, string>;
  /** What the install puts in front of PATH (venv bin, node_modules/.bin): a server's own PATH goes after it. */
  pathPrefix: string[];
  notes: string[];
}

/** An install task's failures: phase dep_install; a crash of the run is INSTALL_FAILED, a cancel INSTALL_CANCELLED. */
const INSTALL_TASK_ERRORS: TaskErrorSpec = {
  phase: 'dep_install',
  codes: { failed: 'INSTALL_FAILED', cancelled: 'INSTALL_CANCELLED' },
};

export async function installDependencies(input: InstallInput): Promise<InstallOutcome> {
  const started = Date.now();
  const { plan, fingerprints: fps, stage, paths } = input.staged;
  const env = activationEnv(plan, fps, paths, BASE_PATH, input.installOptions ?? {});
  const pathPrefix = activationPathPrefix(plan, fps, paths);
  const missing: { python: string | null; node: string | null } = {
    python:
      plan?.python != null && fps.python !== null && !stage.depsPresent.has(`py-${fps.python}`) ? fps.python : null,
    node: plan?.node != null && fps.node !== null && !stage.depsPresent.has(`node-${fps.node}`) ? fps.node : null,
  };
  const installed = (['python', 'node'] as const).filter((k) => missing[k] !== null);
  if (plan === null || installed.length === 0) {
    return {
      skipped: true,
      installed: [],
      taskId: null,
      durationMs: Date.now() - started,
      env,
      pathPrefix,
      notes: plan?.notes ?? [],
    };
  }
  const timeoutMs = input.timeoutMs ?? DEFAULT_INSTALL_TIMEOUT_MS;
  const task = input.tasks.start(
    'install',
    input.subject,
    async (ctx) => {
      for (const note of plan.notes) ctx.output(`mcp-box: note: ${note}\n`);
      const signal = input.signal === undefined ? ctx.signal : AbortSignal.any([ctx.signal, input.signal]);
      const result = await input.session.exec({
        identity: input.identity,
        cmd: ['/bin/sh', '-c', installScript(plan, missing, paths)],
        env: installEnv(paths, input.installOptions ?? {}),
        cwd: paths.workspace,
        timeoutMs,
        signal,
        maxOutputBytes: 256 * 1024,
        onOutput: (_stream, chunk) => ctx.output(chunk.toString('utf8')),
      });
      const tail = lastLines(`${result.stdout}\n${result.stderr}`, 30);
      const details = { exitCode: result.exitCode, durationMs: result.durationMs, outputTail: tail, taskId: ctx.id };
      if (result.timedOut)
        throw new BoxError(
          'INSTALL_TIMEOUT',
          'dep_install',
          `Dependency install timed out after ${Math.round(timeoutMs / 1000)} s and was killed; last output:\n${tail}`,
          { details },
        );
      if (result.cancelled)
        throw new BoxError('INSTALL_CANCELLED', 'dep_install', 'Dependency install was cancelled', { details });
      if (result.exitCode !== 0) {
        throw new BoxError(
          'INSTALL_FAILED',
          'dep_install',
          `Dependency install failed (exit ${result.exitCode}); last output:\n` +
            `${lastLines(result.stderr || result.stdout, 15)}`,
          { details },
        );
      }
      return result;
    },
    INSTALL_TASK_ERRORS,
  );
  input.onTask?.(task.id);
  await task.done;
  return {
    skipped: false,
    installed: [...installed],
    taskId: task.id,
    durationMs: Date.now() - started,
    env,
    pathPrefix,
    notes: plan.notes,
  };
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}
