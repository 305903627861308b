/**
 * Hostile tenants sharing a session with a well-behaved one: a fork bomb, a server printing
 * 16 MiB garbage lines on stdout without end, and servers filling their disk (a tenant filling
 * /tmp is in faults-process). The neighbour keeps answering, the supervisor's memory stays
 * bounded, the bomb stays within its uid's limit, a disk filler is stopped at its quota.
 */
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDENTITY_PARENT } from '../../src/runtime/identity.js';
import type { Session } from '../../src/runtime/types.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import type { TempFolder } from '../helpers/folders.js';
import { faultServerFolder } from '../helpers/fault-server.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';

const MIB = 1024 * 1024;

describe('hostile tenants in one session', () => {
  let sup: Supervisor;
  const folders: TempFolder[] = [];
  const sessionOf = (name: string): Session => {
    const session = sup.runtime.sessions().find((s) => s.info.name === sup.get(name).session);
    if (session === undefined) throw new Error(`no session for ${name}`);
    return session;
  };
  /** The neighbour's round trips while a hostile tenant runs: every one must answer, each well under a second. */
  const neighbourRoundTrips = async (rounds: number): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const started = Date.now();
      expect(await sup.callTool('neighbour', 'add', { a: i, b: 1 }, { timeoutMs: 10_000 })).toMatchObject({
        content: [{ text: String(i + 1) }],
      });
      times.push(Date.now() - started);
      await new Promise((r) => setTimeout(r, 100));
    }
    return times;
  };

  beforeAll(async () => {
    const f = faultServerFolder();
    folders.push(f);
    sup = await testSupervisor(testConfig({ pingIntervalSec: 0, processLimit: 64, diskCheckSec: 1 }));
    sup.add('neighbour', { command: 'node', args: [`${f.path}/server.cjs`] });
    await waitForState(sup, 'neighbour', ['ready']);
  });
  afterAll(async () => {
    await sup.close();
    for (const f of folders) f.cleanup();
  });

  it('a fork bomb stays within its uid’s process limit and the neighbour keeps answering', async () => {
    sup.add('bomb', {
      command: 'sh',
      args: ['-c', 'while :; do (sleep 600 &) 2>/dev/null; done'],
      box: { client: 'external' },
    });
    const bomb = await waitForState(sup, 'bomb', ['ready', 'failed']);
    await new Promise((r) => setTimeout(r, 3000));
    const count = Number(
      (await sessionOf('bomb').exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${bomb.uid} | wc -l`] })).stdout.trim(),
    );
    expect(count).toBeGreaterThan(10);
    expect(count).toBeLessThanOrEqual(64);
    const times = await neighbourRoundTrips(10);
    console.log(
      `[hostile] fork bomb: ${count} processes of its uid; neighbour round trips max ${Math.max(...times)} ms`,
    );
    await sup.remove('bomb');
    const left = (
      await sessionOf('neighbour').exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${bomb.uid} | wc -l`] })
    ).stdout.trim();
    expect(left).toBe('0');
  });

  it(
    '16 MiB garbage lines on stdout without end: the ' + 'supervisor’s memory stays bounded and the neighbour answers',
    async () => {
      // Lines just under the relay's 16 MiB limit, none of them JSON, as fast as the pipe takes them.
      const script =
        'const line = Buffer.alloc(16 * 1024 * 1024 - 1024, 0x78); line[line.length - 1] = 10; ' +
        'const write = () => process.stdout.write(line, write); write(); setInterval(() => {}, 1e9);';
      const rssBefore = process.memoryUsage().rss;
      sup.add('garbage', { command: 'node', args: ['-e', script], box: { client: 'external' } });
      await waitForState(sup, 'garbage', ['ready', 'failed']);
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      try {
        const times = await neighbourRoundTrips(40);
        const lines = sup.logs('garbage', 0, 5000).lines.filter((l) => l.source === 'stdout');
        console.log(
          `[hostile] 16 MiB garbage: ${lines.length} lines logged; ` +
            `RSS ${Math.round(rssBefore / MIB)} → peak ${Math.round(peak / MIB)} MiB; ` +
            `neighbour max ${Math.max(...times)} ms`,
        );
        expect(lines.length).toBeGreaterThan(3);
        for (const l of lines) expect(l.text.length).toBeLessThan(8 * 1024);
        expect(peak - rssBefore).toBeLessThan(300 * MIB);
        expect(Math.max(...times)).toBeLessThan(1000);
      } finally {
        clearInterval(sampler);
      }
      await sup.remove('garbage');
    },
  );

  it(
    'a tenant filling its disk: one big file is refused by the kernel, many files stop it at its quota, ' +
      'its folders are cleared',
    async () => {
      // 32 MiB quota. First one 40 MiB file (RLIMIT_FSIZE: EFBIG, Python ignores SIGXFSZ), then 4 MiB
      // files, each under the file cap, until 160 MiB: only the disk watch sees the total.
      const script = [
        'import os, sys, time',
        "home = os.environ['HOME']",
        'try:',
        "    with open(os.path.join(home, 'big'), 'wb') as f:",
        '        for _ in range(40): f.write(bytes(1048576))',
        "    print('big file written', file=sys.stderr, flush=True)",
        'except OSError as e:',
        "    print(f'big file refused: errno {e.errno}', file=sys.stderr, flush=True)",
        "os.remove(os.path.join(home, 'big'))",
        'for i in range(40):',
        "    with open(os.path.join(home, f'fill{i}'), 'wb') as f: f.write(b'y' * 4194304)",
        '    time.sleep(0.05)',
        "print('filled', file=sys.stderr, flush=True)",
        'time.sleep(600)',
      ].join('\n');
      sup.add('filler', {
        command: 'python3',
        args: ['-c', script],
        box: { client: 'external', diskMb: 32, restart: { maxRestarts: 0 } },
      });
      const { workspace } = await waitForState(sup, 'filler', ['ready', 'failed'], 60_000);
      const folder = dirname(workspace ?? '');
      expect(folder.startsWith(`${IDENTITY_PARENT}/`)).toBe(true);
      const failed = await waitForState(sup, 'filler', ['failed'], 60_000);
      expect(failed.error).toMatchObject({ code: 'DISK_QUOTA_EXCEEDED', phase: 'runtime' });
      expect(failed.error?.message).toMatch(/uses \d+ MiB of disk, above its quota of 32 MiB \(box\.diskMb\)/);
      const stderr = sup
        .logs('filler', 0, 500)
        .lines.filter((l) => l.source === 'stderr')
        .map((l) => l.text);
      expect(stderr).toContain('big file refused: errno 27');
      expect(stderr).not.toContain('big file written');
      // Its folders went with the failure (any uid may stat a path under the 1733 parent).
      expect(failed.uid).toBeUndefined();
      const exists = async (path: string): Promise<number | null> =>
        (await sessionOf('neighbour').exec({ cmd: ['test', '-e', path] })).exitCode;
      expect(await exists(dirname(sup.get('neighbour').workspace ?? ''))).toBe(0);
      expect(await exists(folder)).toBe(1);
      const times = await neighbourRoundTrips(5);
      console.log(`[hostile] disk filler: ${failed.error?.message}; neighbour max ${Math.max(...times)} ms`);
      await sup.remove('filler');
    },
  );

  it('a writer that does not ignore SIGXFSZ is killed at the file cap and the record says why', async () => {
    const script = 'sleep 3; exec head -c 41943040 /dev/zero > "$HOME/big"';
    sup.add('bigfile', {
      command: 'sh',
      args: ['-c', script],
      box: { client: 'external', diskMb: 32, restart: { maxRestarts: 0 } },
    });
    const failed = await waitForState(sup, 'bigfile', ['failed'], 60_000);
    expect(failed.error).toMatchObject({ code: 'DISK_QUOTA_EXCEEDED', signal: 'SIGXFSZ' });
    expect(failed.error?.message).toContain(
      'wrote a file past its disk quota of 32 MiB (box.diskMb) and was killed by SIGXFSZ',
    );
    await sup.remove('bigfile');
  });
});
