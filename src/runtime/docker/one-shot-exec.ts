/**
 * One-shot exec: run a command to completion with bounded output capture. A timeout or an abort
 * kills only this exec's process group (TERM, grace, KILL) — never the session or its neighbours.
 */
import { Readable, Writable } from 'node:stream';
import { ByteRing } from '../../util/byte-ring.js';
import { delay } from '../../util/abort.js';
import { demultiplex } from './demux.js';
import { startExec } from './exec-stream.js';
import { PidLineReader, wrapCommand } from './exec-wrapper.js';
import type { ExecContext } from './exec-context.js';
import type { ExecResult, ExecSpec } from '../types.js';

const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
const KILL_GRACE_MS = 2000;

export async function runOneShotExec(ctx: ExecContext, spec: ExecSpec): Promise<ExecResult> {
  const startedAt = Date.now();
  const maxBytes = spec.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const stdoutRing = new ByteRing(maxBytes);
  const stderrRing = new ByteRing(maxBytes);
  const hasStdin = spec.stdin !== undefined;
  spec.signal?.throwIfAborted();

  const started = await startExec(ctx.container, {
    cmd: wrapCommand(spec.cmd, ctx.limits === undefined ? {} : { limits: ctx.limits }),
    user: ctx.user,
    env: { ...ctx.env, ...spec.env },
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    attachStdin: hasStdin,
    phase: ctx.phase,
    ...(ctx.onContainerGone === undefined ? {} : { onContainerGone: ctx.onContainerGone }),
    ...(spec.signal === undefined ? {} : { signal: spec.signal }),
  });

  const pidReader = new PidLineReader((chunk) => {
    stderrRing.write(chunk);
    spec.onOutput?.('stderr', chunk);
  });
  const stdoutSink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      stdoutRing.write(chunk);
      spec.onOutput?.('stdout', chunk);
      callback();
    },
  });
  const drained = demultiplex(started.stream, { stdout: stdoutSink, onStderr: (chunk) => pidReader.push(chunk) });

  if (spec.stdin instanceof Readable) {
    const input = spec.stdin;
    input.on('error', () => started.stream.end());
    input.pipe(started.stream);
  } else if (spec.stdin !== undefined) {
    started.stream.write(typeof spec.stdin === 'string' ? Buffer.from(spec.stdin) : spec.stdin);
    started.stream.end();
  }

  let timedOut = false;
  let cancelled = false;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const pid = await pidReader.waitForPid();
      if (pid === null) return;
      await ctx.kill(ctx.user, { group: pid }, 'TERM').catch(() => undefined);
      const ended = await Promise.race([drained.then(() => true), delay(KILL_GRACE_MS).then(() => false)]);
      if (!ended) await ctx.kill(ctx.user, { group: pid }, 'KILL').catch(() => undefined);
    })());

  const timer =
    spec.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          void stop();
        }, spec.timeoutMs);
  const onAbort = (): void => {
    cancelled = true;
    void stop();
  };
  spec.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    await drained;
    pidReader.end();
    const { exitCode } = await started.waitExit();
    return {
      exitCode,
      timedOut,
      cancelled,
      stdout: stdoutRing.toString(),
      stderr: stderrRing.toString(),
      stdoutTruncated: stdoutRing.stats.dropped > 0,
      stderrTruncated: stderrRing.stats.dropped > 0,
      pid: pidReader.pid,
      durationMs: Date.now() - startedAt,
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    spec.signal?.removeEventListener('abort', onAbort);
    started.stream.destroy();
  }
}
