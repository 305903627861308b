/** Creates and starts an exec with a hijacked (bidirectional) stream. The only exec primitive. */
import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { delay } from '../../util/abort.js';
import { containerGoneReason, statusCodeOf, toBoxError } from './engine-errors.js';
import { BoxError } from '../../errors/box-error.js';
import { signalled } from './signalled.js';
import type { Phase } from '../../errors/box-error.js';

export interface ExecStartSpec {
  cmd: string[];
  user: string;
  env: Record<string, string>;
  cwd?: string;
  attachStdin: boolean;
  phase: Phase;
  signal?: AbortSignal;
  /** Called when the engine refuses the exec because the container is not running or is gone. */
  onContainerGone?: (reason: string) => void;
}

export interface StartedExec {
  id: string;
  stream: Duplex;
  /** Polls ExecInspect until the process really ended (moby#19607), then returns its exit code. */
  waitExit(opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<{ exitCode: number | null }>;
}

export async function startExec(container: Dockerode.Container, spec: ExecStartSpec): Promise<StartedExec> {
  const what = `start "${spec.cmd[0] ?? ''}" in container ${container.id.slice(0, 12)}`;
  let exec: Dockerode.Exec;
  let stream: Duplex;
  try {
    exec = await container.exec({
      Cmd: spec.cmd,
      User: spec.user,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      ...(spec.cwd === undefined ? {} : { WorkingDir: spec.cwd }),
      AttachStdin: spec.attachStdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Privileged: false,
      abortSignal: spec.signal,
    } as Dockerode.ExecCreateOptions);
    stream = (await exec.start({
      hijack: true,
      stdin: spec.attachStdin,
      Detach: false,
      Tty: false,
      abortSignal: spec.signal,
    } as Dockerode.ExecStartOptions)) as Duplex;
  } catch (err) {
    const gone = containerGoneReason(err);
    if (gone !== null) {
      spec.onContainerGone?.(gone);
      throw new BoxError('SESSION_DEAD', spec.phase, `Cannot ${what}: the session container is gone (${gone})`, {
        cause: err,
        details: { statusCode: statusCodeOf(err) },
      });
    }
    throw toBoxError(err, spec.phase, what, 'EXEC_FAILED');
  }
  const execRef = exec;
  return {
    id: exec.id,
    stream,
    async waitExit(opts = {}) {
      const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
      let pause = 5;
      for (;;) {
        let info: Dockerode.ExecInspectInfo;
        try {
          info = await signalled<Dockerode.ExecInspectInfo>(execRef, execRef.inspect)({ abortSignal: opts.signal });
        } catch (err) {
          throw toBoxError(err, spec.phase, `inspect exec of "${spec.cmd[0] ?? ''}"`, 'EXEC_FAILED');
        }
        if (!info.Running) return { exitCode: typeof info.ExitCode === 'number' ? info.ExitCode : null };
        if (Date.now() > deadline) return { exitCode: null };
        await delay(pause, opts.signal);
        pause = Math.min(pause * 2, 250);
      }
    },
  };
}
