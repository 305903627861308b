/**
 * The stage as the prelude of a server's own exec (one exec for stage and process): against the real engine, what
 * it stages, what reaches the command's stdin, and how it ends when it must stop or fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBoxError } from '../../src/errors/box-error.js';
import type { Identity, ManagedProcess, Runtime, Session } from '../../src/runtime/types.js';
import { PRELUDE_STAGE_MAX_BYTES, stagePrelude } from '../../src/workspace/stage-folder.js';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { testProfile, testRuntime } from '../helpers/runtime.js';

/** Echoes each stdin line back with its folder and uid: shows what reached the command after the stage's bytes. */
const ECHO = `process.stdin.setEncoding('utf8');
let buf = '';
process.stdin.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) {
  const line = buf.slice(0, i); buf = buf.slice(i + 1);
  const file = require('fs').readFileSync('data.txt', 'utf8');
  process.stdout.write(JSON.stringify({ line, cwd: process.cwd(), uid: process.getuid(), file }) + '\\n');
} });`;

describe('stage as the prelude of the process', () => {
  let runtime: Runtime;
  let session: Session;
  let identity: Identity;
  const folders: TempFolder[] = [];
  const procs: ManagedProcess[] = [];
  const folder = (files: Record<string, string>): TempFolder => {
    const f = tempFolder();
    for (const [rel, content] of Object.entries(files)) f.write(rel, content);
    folders.push(f);
    return f;
  };
  const start = async (f: TempFolder, need: string[] = [], tamper?: (b: Buffer) => Buffer) => {
    const stage = await stagePrelude(identity, { hostPath: f.path, need });
    if (stage === null) throw new Error('expected a prelude stage');
    const prelude = tamper === undefined ? stage.prelude : { ...stage.prelude, stdin: tamper(stage.prelude.stdin) };
    const proc = await session.startProcess({
      id: 'p',
      identity,
      cmd: ['node', 'echo.js'],
      cwd: identity.workspace,
      prelude,
    });
    procs.push(proc);
    return { stage, proc };
  };

  beforeAll(async () => {
    runtime = testRuntime();
    session = await runtime.ensureSession(testProfile());
    identity = await session.createIdentity({ provision: false });
  });
  afterAll(async () => {
    for (const p of procs) await p.stop({ eofGraceMs: 0, termGraceMs: 500 });
    await runtime.close();
    for (const f of folders) f.cleanup();
  });

  it('stages the folder, then runs the command in it as the uid, every byte after the tar on its stdin', async () => {
    const f = folder({ 'echo.js': ECHO, 'data.txt': 'staged-by-prelude' });
    const { stage, proc } = await start(f);
    expect(proc.prelude?.status).toBe('ran');
    expect(proc.running).toBe(true);
    const result = stage.result(proc.prelude!);
    expect(result.files).toBe(2);
    expect(result.hashes.size).toBe(2);
    const out: string[] = [];
    proc.stdout.on('data', (d: Buffer) => out.push(d.toString('utf8')));
    proc.stdin.write('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
    await expect.poll(() => out.join(''), { timeout: 10_000 }).toContain('\n');
    const answer = JSON.parse(out.join('').split('\n')[0]!) as Record<string, unknown>;
    expect(answer).toEqual({
      line: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      cwd: `${identity.root}/ws.${result.generation}`,
      uid: identity.uid,
      file: 'staged-by-prelude',
    });
    // The prelude's report never reached the command's stdout (only the echo did).
    expect(out.join('')).not.toContain('deps:');
    await proc.stop({ eofGraceMs: 2000 });
  });

  it('kills what the identity still runs before it stages (exclusive)', async () => {
    const f = folder({ 'echo.js': ECHO, 'data.txt': 'x' });
    const first = await start(f);
    expect(first.proc.running).toBe(true);
    // A second start of the same identity (a restart whose old process was left behind) ends the first.
    const second = await start(f);
    expect(second.proc.prelude?.status).toBe('ran');
    const exit = await first.proc.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(second.proc.running).toBe(true);
    await second.proc.stop({ eofGraceMs: 2000 });
  });

  it('stops after staging, without running the command, when a dependency set it needs is not installed', async () => {
    const f = folder({ 'echo.js': ECHO, 'data.txt': 'needs-deps' });
    const { stage, proc } = await start(f, ['node-0123456789abcdef']);
    expect(proc.prelude).toMatchObject({ status: 'stopped', exitCode: 100 });
    expect(proc.running).toBe(false);
    const result = stage.result(proc.prelude!);
    expect(result.depsPresent.has('node-0123456789abcdef')).toBe(false);
    // Staged all the same: the install and a plain start come next.
    const seen = await session.exec({ identity, cmd: ['cat', 'data.txt'] });
    expect(seen.stdout).toBe('needs-deps');
  });

  it('fails with the extraction error (and runs nothing) when the bytes are not a whole tar', async () => {
    const f = folder({ 'echo.js': ECHO, 'data.txt': 'y'.repeat(5000) });
    const { stage, proc } = await start(f, [], (b) =>
      Buffer.concat([b.subarray(0, 1024), Buffer.alloc(b.length - 1024, 0x41)]),
    );
    expect(proc.prelude?.status).toBe('failed');
    expect(proc.running).toBe(false);
    let thrown: unknown;
    try {
      stage.result(proc.prelude!);
    } catch (err) {
      thrown = err;
    }
    expect(isBoxError(thrown) && thrown.code).toBe('STAGE_FAILED');
    expect(isBoxError(thrown) && thrown.phase).toBe('workspace_stage');
    expect(String((thrown as Error).message)).toMatch(/tar/);
  });

  it('kills a prelude past its deadline, or cancelled, and leaves nothing of the uid running', async () => {
    const hang = { script: 'sleep 300', stdin: Buffer.alloc(0), exclusive: true, timeoutMs: 1500 };
    const startedAt = Date.now();
    const late = await session.startProcess({
      id: 'hang',
      identity,
      cmd: ['node', '-e', '0'],
      cwd: '/',
      prelude: hang,
    });
    expect(late.prelude).toMatchObject({ status: 'failed' });
    expect(late.prelude?.output.at(-1)).toMatch(/did not finish within 1500 ms/);
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 500);
    const cancelled = await session.startProcess({
      id: 'hang',
      identity,
      cmd: ['node', '-e', '0'],
      cwd: '/',
      prelude: { ...hang, timeoutMs: 60_000 },
      signal: abort.signal,
    });
    expect(cancelled.prelude?.output.at(-1)).toMatch(/was cancelled/);
    for (const p of [late, cancelled]) expect(p.running).toBe(false);
    // ps prints nothing for a uid with no process (and exits 1); `end` shows it ran at all.
    const left = await session.exec({ cmd: ['/bin/sh', '-c', `ps -o pid=,args= -u ${identity.uid}; echo end`] });
    expect(left.stdout.trim()).toBe('end');
  });

  it('leaves a folder too big to hold in memory to a stage of its own', async () => {
    const f = folder({ 'big.bin': 'z'.repeat(PRELUDE_STAGE_MAX_BYTES) });
    await expect(stagePrelude(identity, { hostPath: f.path, need: [] })).resolves.toBeNull();
  });
});
