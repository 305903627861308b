import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity, Runtime, Session } from '../../src/runtime/types.js';
import { collect, eventually, testProfile, testRuntime } from '../helpers/runtime.js';

describe('exec and managed processes', () => {
  let runtime: Runtime;
  let session: Session;
  let alice: Identity;
  let bob: Identity;

  beforeAll(async () => {
    runtime = testRuntime();
    session = await runtime.ensureSession(testProfile());
    [alice, bob] = await Promise.all([session.createIdentity(), session.createIdentity()]);
  });
  afterAll(async () => {
    await runtime.close();
  });

  it('records exit codes 0, 3 and 127', async () => {
    const ok = await session.exec({ identity: alice, cmd: ['true'] });
    const three = await session.exec({ identity: alice, cmd: ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'] });
    const missing = await session.exec({ identity: alice, cmd: ['no-such-command-xyz'] });
    expect(ok.exitCode).toBe(0);
    expect(three).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/no-such-command-xyz/);
    expect(ok.pid).toBeGreaterThan(1);

    const procs = await Promise.all(
      [['true'], ['/bin/sh', '-c', 'exit 3'], ['no-such-command-xyz']].map((cmd) =>
        session.startProcess({ id: `exit-${cmd[0]}`, identity: alice, cmd }),
      ),
    );
    const exits = await Promise.all(procs.map((p) => p.exited));
    expect(exits.map((e) => e.exitCode)).toEqual([0, 3, 127]);
    expect(exits.map((e) => e.reason)).toEqual(['exited', 'exited', 'exited']);
    expect(exits[2]?.stderrTail).toMatch(/no-such-command-xyz/);
  });

  it('passes env through the Engine API, never argv', async () => {
    const secret = 'canary-' + Math.random().toString(36).slice(2);
    const proc = await session.startProcess({
      id: 'env',
      identity: alice,
      cmd: ['/bin/sh', '-c', 'echo "$API_KEY"; cat /proc/$$/cmdline | tr "\\0" " "; echo; sleep 30'],
      env: { API_KEY: secret },
    });
    const out = await collect(proc.stdout, (t) => t.split('\n').length >= 3);
    const [first, cmdline] = out.split('\n');
    expect(first).toBe(secret);
    expect(cmdline).not.toContain(secret);
    await proc.stop({ eofGraceMs: 100, termGraceMs: 1000 });
  });

  it('applies the per-uid process limit, default or per process', async () => {
    const limits = "awk '/Max processes/ {print $3} /Max open files/ {print $4}' /proc/self/limits";
    const dflt = await session.startProcess({ id: 'limit-default', identity: alice, cmd: ['/bin/sh', '-c', limits] });
    expect(await collect(dflt.stdout)).toBe('128\n4096\n');
    const custom = await session.startProcess({
      id: 'limit-custom',
      identity: alice,
      cmd: ['/bin/sh', '-c', limits],
      processLimit: 20,
    });
    expect(await collect(custom.stdout)).toBe('20\n4096\n');
  });

  it('an exec timeout kills only that exec while a managed process keeps running', async () => {
    const survivor = await session.startProcess({ id: 'survivor', identity: alice, cmd: ['cat'] });
    const started = Date.now();
    const result = await session.exec({
      identity: alice,
      cmd: ['/bin/sh', '-c', 'sleep 300 & sleep 300; echo never'],
      timeoutMs: 500,
    });
    expect(result.timedOut).toBe(true);
    expect(result.stdout).not.toContain('never');
    expect(Date.now() - started).toBeLessThan(10_000);
    // The timed-out exec's children are gone too (its process group was killed) …
    const ps = await session.exec({
      identity: alice,
      cmd: ['/bin/sh', '-c', 'ps -eo args | grep -c "^sleep 300" || true'],
    });
    expect(ps.stdout.trim()).toBe('0');
    // … while the managed process still answers.
    expect(survivor.running).toBe(true);
    survivor.stdin.write('still here\n');
    await expect(collect(survivor.stdout, (t) => t.includes('still here'))).resolves.toContain('still here');
    await survivor.stop();
  });

  it('delivers stdin EOF, and cat exits by itself', async () => {
    const cat = await session.startProcess({ id: 'cat', identity: alice, cmd: ['cat'] });
    expect(cat.pid).toBeGreaterThan(1);
    const output = collect(cat.stdout);
    cat.stdin.write('hello\n');
    cat.stdin.end();
    const exit = await cat.exited;
    expect(exit).toMatchObject({ exitCode: 0, reason: 'exited', signal: null, oomKilled: false });
    expect(await output).toBe('hello\n');
  });

  it('stops a process that ignores stdin EOF and SIGTERM within the escalation budget', async () => {
    const stubborn = await session.startProcess({
      id: 'stubborn',
      identity: alice,
      cmd: ['/bin/sh', '-c', 'trap "" TERM; sleep 1000 & while true; do sleep 1; done'],
    });
    const started = Date.now();
    const exit = await stubborn.stop({ eofGraceMs: 300, termGraceMs: 700 });
    const elapsed = Date.now() - started;
    expect(exit.reason).toBe('stopped');
    expect(exit.stoppedBy).toBe('sigkill');
    expect(exit.signal).toBe('SIGKILL');
    expect(elapsed).toBeLessThan(300 + 700 + 5000);
    // The background child (another member of the uid) is gone as well.
    const ps = await session.exec({ cmd: ['/bin/sh', '-c', `ps -o user= -u ${alice.uid} | wc -l`] });
    expect(ps.stdout.trim()).toBe('0');
    // stop() is idempotent
    await expect(stubborn.stop()).resolves.toEqual(exit);
  });

  it('stops a well-behaved process with SIGTERM when it ignores EOF', async () => {
    const sleeper = await session.startProcess({ id: 'sleeper', identity: alice, cmd: ['sleep', '1000'] });
    const exit = await sleeper.stop({ eofGraceMs: 200, termGraceMs: 5000 });
    expect(exit).toMatchObject({ reason: 'stopped', stoppedBy: 'sigterm', signal: 'SIGTERM', exitCode: 143 });
  });

  it('keeps identities apart: no reading of another workspace or environ', async () => {
    const secret = 'bob-secret-' + Math.random().toString(36).slice(2);
    const bobProc = await session.startProcess({
      id: 'bob',
      identity: bob,
      cmd: ['sleep', '1000'],
      env: { BOB_TOKEN: secret },
    });
    await session.exec({ identity: bob, cmd: ['/bin/sh', '-c', `echo ${secret} > "$HOME/private.txt"`] });
    const attempt = await session.exec({
      identity: alice,
      cmd: [
        '/bin/sh',
        '-c',
        `cat ${bob.home}/private.txt; ls ${bob.root}; cat /proc/${bobProc.pid}/environ; ls /workspace/.mcp; ` +
          `kill -0 ${bobProc.pid} && echo SIGNALLED`,
      ],
    });
    expect(attempt.stdout).not.toContain(secret);
    expect(attempt.stdout).not.toContain('SIGNALLED');
    expect(attempt.stderr).toMatch(/Permission denied/);
    expect(attempt.stderr).toMatch(/Operation not permitted/);
    const own = await session.exec({ identity: bob, cmd: ['cat', `${bob.home}/private.txt`] });
    expect(own.stdout.trim()).toBe(secret);
    await bobProc.stop({ eofGraceMs: 100 });
  });

  it('a fork bomb under one uid does not stop another uid from forking, and is cleaned up by uid', async () => {
    const bomb = await session.startProcess({
      id: 'bomb',
      identity: alice,
      // Forks until the uid's process allowance is used up, and keeps trying.
      cmd: [
        'python3',
        '-c',
        'import os, time\nwhile True:\n    try:\n' +
          '        if os.fork() == 0:\n            time.sleep(1000); os._exit(0)\n' +
          '    except OSError:\n        time.sleep(0.05)',
      ],
    });
    // Wait until the bomb sits at its per-uid limit.
    await eventually(
      async () => {
        const r = await session.exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${alice.uid} | wc -l`] });
        const count = Number(r.stdout.trim());
        return count >= 100 ? count : undefined;
      },
      20_000,
      200,
    );
    // The per-uid allowance (128) holds: the bomb cannot take the whole pids limit (256).
    const atLimit = await session.exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${alice.uid} | wc -l`] });
    expect(Number(atLimit.stdout.trim())).toBeLessThanOrEqual(128);
    const other = await session.exec({
      identity: bob,
      cmd: ['/bin/sh', '-c', 'for i in 1 2 3 4 5; do (echo forked-$i) & done; wait'],
    });
    expect(other.exitCode).toBe(0);
    expect(other.stdout.split('\n').filter((l) => l.startsWith('forked-'))).toHaveLength(5);
    const exit = await bomb.stop({ eofGraceMs: 100, termGraceMs: 500 });
    expect(exit.reason).toBe('stopped');
    const left = await eventually(
      async () => {
        const r = await session.exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${alice.uid} | wc -l`] });
        return r.stdout.trim() === '0' ? r.stdout.trim() : undefined;
      },
      15_000,
      200,
    );
    expect(left).toBe('0');
  });

  it('a stderr flood never blocks stdout', async () => {
    // An endless stderr flood runs the whole time the process answers on stdout.
    const flood = await session.startProcess({
      id: 'flood',
      identity: bob,
      cmd: [
        '/bin/sh',
        '-c',
        'yes eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee >&2 & while read line; do echo "got $line"; done',
      ],
    });
    await eventually(() => (flood.stderrTail().length >= 60 * 1024 ? true : undefined), 15_000);
    const replies = collect(flood.stdout, (t) => t.includes('got 200'));
    for (let i = 1; i <= 200; i++) flood.stdin.write(`${i}\n`);
    const text = await replies;
    expect(text.split('\n').filter((l) => l.startsWith('got '))).toHaveLength(200);
    const tail = flood.stderrTail();
    expect(tail.length).toBeGreaterThan(60 * 1024);
    expect(tail.length).toBeLessThanOrEqual(64 * 1024);
    expect(tail).toMatch(/^(e+\n)+e*$/);
    await flood.stop({ eofGraceMs: 500 });
  });
});
