/**
 * dep_install: skip when the fingerprints are already installed (no exec at all), otherwise run the install as a
 * task with its own timeout and cancel. What is installed comes from the staged folder's plan (StagedWorkspace).
 */
import { DEFAULT_INSTALL_TIMEOUT_MS } from '../defaults.js';
import { BoxError } from '../errors/box-error.js';
import type { Identity, Session } from '../runtime/types.js';
import type { TaskErrorSpec, TaskRegistry } from '../tasks/task-registry.js';
import type { StageResult } from '../workspace/stage-folder.js';
import {
  activationEnv,
  activationPathPrefix,
  installEnv,
  installScript,
  type InstallOptions,
  type InstallPaths,
  type InstallPlan,
  type ToolVersions,
} from './detect-install.js';

export { DEFAULT_INSTALL_TIMEOUT_MS };
export const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A staged folder and what its install needs (composed by the supervisor: supervisor/stage-server.ts). */
export interface StagedWorkspace {
  stage: StageResult;
  plan: InstallPlan | null;
  tools: ToolVersions;
  fingerprints: DepFingerprints;
  paths: InstallPaths;
}

export interface DepFingerprints {
  python: string | null;
  node: string | null;
}

/** The installed dependency sets (`py-<fp>`, `node-<fp>`) the plan needs in the identity's deps folder. */
export function neededDepSets(
  plan: InstallPlan | null,
  fps: DepFingerprints,
): { python: string | null; node: string | null } {
  return {
    python: plan?.python != null && fps.python !== null ? `py-${fps.python}` : null,
    node: plan?.node != null && fps.node !== null ? `node-${fps.node}` : null,
  };
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
  const needed = neededDepSets(plan, fps);
  const missing: DepFingerprints = {
    python: needed.python !== null && !stage.depsPresent.has(needed.python) ? fps.python : null,
    node: needed.node !== null && !stage.depsPresent.has(needed.node) ? fps.node : null,
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
