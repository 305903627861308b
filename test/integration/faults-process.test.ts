/**
 * Fault injection against the real engine, one server process misbehaving at a time: it closes its
 * stdout but keeps running, floods stderr, exits while a 5 MiB request is being written to it, or
 * fills the space it may write to. Each test asserts the recovery and the records the platform sees.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { BoxError } from '../../src/errors/box-error.js';
import type { Session } from '../../src/runtime/types.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import type { TempFolder } from '../helpers/folders.js';
import { faultServerFolder } from '../helpers/fault-server.js';
import { eventually } from '../helpers/runtime.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';

const textOf = (result: CallToolResult): string => (result.content as { text?: string }[])[0]?.text ?? '';
const settle = <T>(p: Promise<T>): Promise<{ value?: T; error?: unknown; at: number }> =>
  p.then(
    (value) => ({ value, at: Date.now() }),
    (error: unknown) => ({ error, at: Date.now() }),
  );

describe('fault injection: a misbehaving server process', () => {
  let sup: Supervisor;
  const folders: TempFolder[] = [];
  const folder = (): TempFolder => {
    const f = faultServerFolder();
    folders.push(f);
    return f;
  };
  const sessionOf = (name: string): Session => {
    const session = sup.runtime.sessions().find((s) => s.info.name === sup.get(name).session);
    if (session === undefined) throw new Error(`no session for ${name}`);
    return session;
  };
  /** Pids of every process of `uid` in the session. */
  const processesOf = async (session: Session, uid: number): Promise<string> =>
    (await session.exec({ cmd: ['/bin/sh', '-c', `ps -o pid=,args= -u ${uid} || true`] })).stdout.trim();

  beforeAll(async () => {
    // No MCP ping: what finds each fault is the mechanism under test, not the health ping.
    sup = await testSupervisor(testConfig({ pingIntervalSec: 0 }));
  });
  afterAll(async () => {
    await sup.close();
    for (const f of folders) f.cleanup();
  });

  it(
    'a server that closes its stdout but keeps running: the calls in flight get one answer each, the failure is ' +
      'runtime/STDOUT_CLOSED, and it is restarted',
    async () => {
      const f = folder();
      sup.add('mute', { command: 'node', args: [`${f.path}/server.cjs`] });
      const ready = await waitForState(sup, 'mute', ['ready', 'failed']);
      expect(ready.state).toBe('ready');

      const started = Date.now();
      const inFlight = settle(sup.callTool('mute', 'sleep', { ms: 50_000 }, { timeoutMs: 60_000 }));
      const closing = settle(sup.callTool('mute', 'close_stdout', {}, { timeoutMs: 60_000 }));
      const answers = await Promise.all([inFlight, closing]);
      const answeredMs = Math.max(...answers.map((a) => a.at)) - started;
      // One answer each, long before the 60 s timeout: an error that says where and why.
      expect(answeredMs).toBeLessThan(15_000);
      for (const answer of answers) {
        expect(answer.value).toBeUndefined();
        expect(answer.error).toBeInstanceOf(BoxError);
        expect((answer.error as BoxError).message).toMatch(/closed its stdout/);
        // Needs the managed-server fix (see the report): today tool_call / TOOL_CALL_FAILED.
        expect.soft(answer.error).toMatchObject({ phase: 'runtime', code: 'STDOUT_CLOSED' });
      }
      const logged = sup.logs('mute', 0, 2000).lines.map((l) => l.text);
      expect(logged).toContainEqual(
        expect.stringMatching(/^relay: the process closed its stdout but is still running/),
      );

      const failed = await eventually(() => {
        const view = sup.get('mute');
        return view.error?.phase === 'runtime' ? view : undefined;
      }, 30_000);
      // Not an exit: the process was alive when it was found out.
      expect(failed.error?.exitCode).toBeUndefined();
      expect(failed.error?.retryable).toBe(true);
      // Needs the managed-server fix: today RELAY_DROPPED after the reconnect attempts (~7 s later).
      expect.soft(failed.error).toMatchObject({
        phase: 'runtime',
        code: 'STDOUT_CLOSED',
        message: expect.stringMatching(/closed its stdout/) as unknown,
      });

      const back = await eventually(() => {
        const view = sup.get('mute');
        return view.state === 'ready' && view.pid !== ready.pid ? view : undefined;
      }, 60_000);
      console.log(
        `[measure] stdout closed: calls answered after ${answeredMs} ms, ` +
          `failure recorded after ${Date.parse(failed.error?.at ?? '') - started} ms, ` +
          `ready again after ${Date.now() - started} ms`,
      );
      expect(back.restarts).toBeGreaterThan(ready.restarts);
      expect(textOf(await sup.callTool('mute', 'echo', { text: 'speaking again' }))).toBe('speaking again');
      await sup.remove('mute');
    },
  );

  it(
    'a server flooding stderr keeps answering; memory, the log and the stderr tail stay bounded; ' +
      'it stops promptly with nothing left behind',
    async () => {
      const f = folder();
      const line = 'flood '.repeat(170); // ~1 KiB per line, endlessly
      // A child floods the stderr it shares with the server. Node makes that pipe non-blocking, so
      // `yes` stops at the first EAGAIN: the loop starts it again at once.
      const flood = `(while :; do yes '${line}' 2>/dev/null; done) >&2 &`;
      sup.add('flood', { command: 'sh', args: ['-c', `${flood} exec node server.cjs`], box: { hostPath: f.path } });
      const ready = await waitForState(sup, 'flood', ['ready', 'failed']);
      expect(ready.state).toBe('ready');

      const firstSeq = sup.logs('flood', 0, 1).first;
      const heap: number[] = [];
      const latencies: number[] = [];
      const floodStarted = Date.now();
      while (Date.now() - floodStarted < 10_000) {
        const t = Date.now();
        expect(textOf(await sup.callTool('flood', 'add', { a: latencies.length, b: 1 }))).toBe(
          String(latencies.length + 1),
        );
        latencies.push(Date.now() - t);
        heap.push(process.memoryUsage().heapUsed);
        await new Promise((r) => setTimeout(r, 100));
      }
      const log = sup.logs('flood', 0, 100_000);
      const linesSeen = (log.lines.at(-1)?.seq ?? 0) - firstSeq;
      const mib = (linesSeen * (line.length + 1)) / 1024 / 1024;
      const sorted = [...latencies].sort((a, b) => a - b);
      console.log(
        `[measure] stderr flood: ${mib.toFixed(0)} MiB (${linesSeen} lines) ` +
          `in ${((Date.now() - floodStarted) / 1000).toFixed(1)} s; ` +
          `${latencies.length} calls, p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms; ` +
          `heap ${(Math.min(...heap) / 1e6).toFixed(0)}–${(Math.max(...heap) / 1e6).toFixed(0)} MB`,
      );
      // It really flooded (megabytes per second), and every call still answered in time.
      expect(mib / 10).toBeGreaterThan(1);
      expect(sorted.at(-1)).toBeLessThan(5000);
      // The log keeps a bounded tail: at most its capacity in lines, each line whole.
      expect(log.lines.length).toBeLessThanOrEqual(2000);
      expect(log.lines.reduce((n, l) => n + l.text.length, 0)).toBeLessThan(2000 * 2 * 1024);
      expect(Math.max(...heap) - Math.min(...heap)).toBeLessThan(256 * 1024 * 1024);

      // A failure record taken in the flood carries a bounded stderr tail.
      await expect(sup.callTool('flood', 'sleep', { ms: 10_000 }, { timeoutMs: 500 })).rejects.toMatchObject({
        code: 'TOOL_TIMEOUT',
      });
      const timeoutRecord = sup.get('flood').error;
      expect(timeoutRecord?.stderrTail).toContain('flood flood');
      expect(Buffer.byteLength(timeoutRecord?.stderrTail ?? '')).toBeLessThanOrEqual(64 * 1024);
      await sup.callTool('flood', 'exit', { code: 5 }).catch(() => undefined);
      const exited = await eventually(() => {
        const view = sup.get('flood');
        return view.error?.code === 'PROCESS_EXITED' ? view : undefined;
      }, 30_000);
      expect(exited.error).toMatchObject({ phase: 'runtime', exitCode: 5 });
      // The tail is the last of stderr: the flood that went on after the exit message.
      expect(exited.error?.stderrTail).toContain('flood flood');
      expect(Buffer.byteLength(exited.error?.stderrTail ?? '')).toBeLessThanOrEqual(64 * 1024);

      // Restarted (the old flood's leftovers are killed with its uid's processes), flooding again.
      const back = await waitForState(sup, 'flood', ['ready'], 60_000);
      expect(back.pid).not.toBe(ready.pid);
      const session = sessionOf('flood');
      const uid = back.uid as number;
      // The flood loop is alive (its `yes` child comes and goes: it quits on EAGAIN and is restarted).
      expect(await processesOf(session, uid)).toMatch(/while :; do yes/);
      const stopStarted = Date.now();
      await sup.stop('flood');
      const stopMs = Date.now() - stopStarted;
      const stopLine = sup
        .logs('flood', 0, 100_000)
        .lines.filter((l) => l.source === 'lifecycle' && l.text.startsWith('process stopped'))
        .at(-1)?.text;
      console.log(`[measure] stderr flood: stop took ${stopMs} ms (${stopLine ?? '?'})`);
      expect(stopMs).toBeLessThan(10_000);
      expect(sup.get('flood').state).toBe('stopped');
      // Nothing of it keeps running: not the server, not the flooding child it started.
      expect(
        await eventually(async () => ((await processesOf(session, uid)) === '' ? 'none' : undefined), 10_000, 250),
      ).toBe('none');
      await sup.remove('flood');
    },
  );

  it(
    'a stderr flood with no line ends (one endless line) keeps the log and the stderr tail ' +
      'of a failure record bounded in bytes',
    async () => {
      const f = folder();
      const flood = "(while :; do yes 'raw' 2>/dev/null | tr -d '\\n' 2>/dev/null; done) >&2 &";
      sup.add('flood-raw', { command: 'sh', args: ['-c', `${flood} exec node server.cjs`], box: { hostPath: f.path } });
      const ready = await waitForState(sup, 'flood-raw', ['ready', 'failed']);
      expect(ready.state).toBe('ready');
      // Enough of it to fill the log's 2000 lines many times over.
      await eventually(() => ((sup.logs('flood-raw', 0, 1).first ?? 0) > 4000 ? true : undefined), 30_000, 200);
      expect(textOf(await sup.callTool('flood-raw', 'add', { a: 2, b: 2 }))).toBe('4');
      await expect(sup.callTool('flood-raw', 'sleep', { ms: 10_000 }, { timeoutMs: 500 })).rejects.toMatchObject({
        code: 'TOOL_TIMEOUT',
      });
      const record = sup.get('flood-raw').error;
      const held = sup.logs('flood-raw', 0, 100_000).lines;
      const heldBytes = held.reduce((n, l) => n + l.text.length, 0);
      console.log(
        `[measure] raw stderr flood: log holds ${held.length} lines, ${(heldBytes / 1e6).toFixed(1)} MB; ` +
          `a failure record's stderrTail is ${Buffer.byteLength(record?.stderrTail ?? '')} bytes`,
      );
      expect(record?.stderrTail).toContain('rawraw');
      // Needs the log/record fix (see the report): lines are cut at 16 KiB, but 40 of them go into the tail.
      expect.soft(Buffer.byteLength(record?.stderrTail ?? '')).toBeLessThanOrEqual(64 * 1024);
      expect.soft(heldBytes).toBeLessThan(8 * 1024 * 1024);
      const stopStarted = Date.now();
      await sup.remove('flood-raw');
      expect(Date.now() - stopStarted).toBeLessThan(10_000);
    },
  );

  it(
    'a server that exits while a 5 MiB request is being written to it: one answer with the exit code, ' +
      'no EPIPE, restarted and serving',
    async () => {
      const stray: unknown[] = [];
      const onStray = (err: unknown): void => void stray.push(err);
      process.on('uncaughtException', onStray);
      process.on('unhandledRejection', onStray);
      try {
        const f = folder();
        sup.add('gulp', { command: 'node', args: [`${f.path}/server.cjs`], env: { EXIT_ON_LONG_LINE: '65536' } });
        const ready = await waitForState(sup, 'gulp', ['ready', 'failed']);
        expect(ready.state).toBe('ready');

        const started = Date.now();
        const answer = await settle(
          sup.callTool('gulp', 'echo', { text: 'a'.repeat(5 * 1024 * 1024) }, { timeoutMs: 60_000 }),
        );
        const answeredMs = answer.at - started;
        expect(answer.value).toBeUndefined();
        expect(answer.error).toMatchObject({ phase: 'runtime', code: 'PROCESS_EXITED' });
        expect((answer.error as BoxError).details.exit).toMatchObject({ exitCode: 3, reason: 'exited' });
        expect((answer.error as BoxError).message).toMatch(/exited with code 3 while tool "echo" was running/);
        expect(answeredMs).toBeLessThan(15_000);

        const failed = await eventually(() => {
          const view = sup.get('gulp');
          return view.error?.code === 'PROCESS_EXITED' ? view : undefined;
        }, 30_000);
        expect(failed.error).toMatchObject({ phase: 'runtime', exitCode: 3, retryable: true });
        // EXIT_ON_LONG_LINE does not name a secret: its value stays readable.
        expect(failed.error?.stderrTail).toMatch(
          /reading a line longer than 65536 bytes \(\d+ so far\): exiting with 3/,
        );
        const back = await eventually(() => {
          const view = sup.get('gulp');
          return view.state === 'ready' && view.pid !== ready.pid ? view : undefined;
        }, 60_000);
        console.log(
          `[measure] exit during a 5 MiB write: answered after ${answeredMs} ms, ` +
            `ready again after ${Date.now() - started} ms`,
        );
        expect(back.restarts).toBe(ready.restarts + 1);
        expect(textOf(await sup.callTool('gulp', 'echo', { text: 'small is fine' }))).toBe('small is fine');
        expect(stray).toEqual([]);
        await sup.remove('gulp');
      } finally {
        process.off('uncaughtException', onStray);
        process.off('unhandledRejection', onStray);
      }
    },
  );

  describe('a session with a small /tmp (box.tmpfsMb: 16)', () => {
    const small = { tmpfsMb: 16 };
    const freeTmpKb = async (session: Session): Promise<number> => {
      const df = await session.exec({ cmd: ['/bin/sh', '-c', "df -k /tmp | awk 'NR==2 {print $4}'"] });
      return Number(df.stdout.trim());
    };

    it(
      'a server filling /tmp gets a clear ENOSPC from its own write; it and its session neighbour keep answering; ' +
        'removing it frees the space',
      async () => {
        const f = folder();
        sup.add('filler', { command: 'node', args: [`${f.path}/server.cjs`], box: small });
        const g = folder(); // each server stages its own folder: two servers never share one
        sup.add('neighbour', { command: 'node', args: [`${g.path}/server.cjs`], box: small });
        const [filler, neighbour] = await Promise.all([
          waitForState(sup, 'filler', ['ready', 'failed']),
          waitForState(sup, 'neighbour', ['ready', 'failed']),
        ]);
        expect([filler.state, neighbour.state]).toEqual(['ready', 'ready']);
        expect(filler.session).toBe(neighbour.session);
        const session = sessionOf('filler');
        expect(await freeTmpKb(session)).toBeGreaterThan(15 * 1024);

        const started = Date.now();
        const result = await sup.callTool('filler', 'fill', { path: '/tmp/fill.bin' }, { timeoutMs: 60_000 });
        console.log(
          `[measure] /tmp full: ENOSPC answered after ${Date.now() - started} ms (${textOf(result).split(':')[0]})`,
        );
        expect(result.isError).toBe(true);
        expect(textOf(result)).toMatch(/^ENOSPC after 1[0-6] MiB: ENOSPC: no space left on device/);
        expect(await freeTmpKb(session)).toBeLessThan(1024);

        // The writer is not harmed: same process, still ready, still answering.
        expect(sup.get('filler')).toMatchObject({ state: 'ready', pid: filler.pid, restarts: filler.restarts });
        expect(textOf(await sup.callTool('filler', 'echo', { text: 'still here' }))).toBe('still here');
        // Its neighbour neither; its own TMPDIR is in its workspace, not on the shared /tmp.
        expect(textOf(await sup.callTool('neighbour', 'write_tmpdir', {}))).toMatch(
          /^wrote and read 1048576 bytes in \/workspace\/\.mcp\//,
        );
        expect(sup.get('neighbour')).toMatchObject({
          state: 'ready',
          pid: neighbour.pid,
          restarts: neighbour.restarts,
        });
        expect(sup.get('neighbour').error).toBeUndefined();

        await sup.remove('filler');
        expect(await freeTmpKb(session)).toBeGreaterThan(15 * 1024);
      },
    );

    it(
      'a folder over box.stageLimits fails in workspace_stage and is not retried; ' +
        'the session neighbour keeps answering',
      async () => {
        const f = folder();
        f.write('weights.bin', Buffer.alloc(3 * 1024 * 1024, 1));
        sup.add('too-big', {
          command: 'node',
          args: [`${f.path}/server.cjs`],
          box: { ...small, stageLimits: { maxBytes: 1024 * 1024 } },
        });
        const view = await waitForState(sup, 'too-big', ['failed', 'ready']);
        expect(view.state).toBe('failed');
        expect(view.error).toMatchObject({ phase: 'workspace_stage', code: 'STAGE_LIMIT_EXCEEDED', retryable: false });
        expect(view.error?.message).toMatch(/limit 1048576\) at "weights\.bin"/);
        expect(view.error?.nextRetryAt).toBeUndefined();
        expect(view.restarts).toBe(0);
        expect(sup.get('neighbour')).toMatchObject({ state: 'ready' });
        expect(textOf(await sup.callTool('neighbour', 'echo', { text: 'unaffected' }))).toBe('unaffected');
        await sup.remove('too-big');
        await sup.remove('neighbour');
      },
    );
  });
});
