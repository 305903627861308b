/**
 * Hostile tenants sharing a session with a well-behaved one: a fork bomb and a server printing
 * 16 MiB garbage lines on stdout without end (a tenant filling /tmp is in faults-process). The
 * neighbour keeps answering, the supervisor's memory stays bounded, the bomb stays within its uid's limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
      expect(await sup.callTool('neighbour', 'add', { a: i, b: 1 }, { timeoutMs: 10_000 })).toMatchObject({ content: [{ text: String(i + 1) }] });
      times.push(Date.now() - started);
      await new Promise((r) => setTimeout(r, 100));
    }
    return times;
  };

  beforeAll(async () => {
    const f = faultServerFolder();
    folders.push(f);
    sup = await testSupervisor(testConfig({ pingIntervalSec: 0, processLimit: 64 }));
    sup.add('neighbour', { command: 'node', args: [`${f.path}/server.cjs`] });
    await waitForState(sup, 'neighbour', ['ready']);
  });
  afterAll(async () => {
    await sup.close();
    for (const f of folders) f.cleanup();
  });

  it('a fork bomb stays within its uid’s process limit and the neighbour keeps answering', async () => {
    sup.add('bomb', { command: 'sh', args: ['-c', 'while :; do (sleep 600 &) 2>/dev/null; done'], box: { client: 'external' } });
    const bomb = await waitForState(sup, 'bomb', ['ready', 'failed']);
    await new Promise((r) => setTimeout(r, 3000));
    const count = Number((await sessionOf('bomb').exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${bomb.uid} | wc -l`] })).stdout.trim());
    expect(count).toBeGreaterThan(10);
    expect(count).toBeLessThanOrEqual(64);
    const times = await neighbourRoundTrips(10);
    console.log(`[hostile] fork bomb: ${count} processes of its uid; neighbour round trips max ${Math.max(...times)} ms`);
    await sup.remove('bomb');
    const left = (await sessionOf('neighbour').exec({ cmd: ['/bin/sh', '-c', `ps -o pid= -u ${bomb.uid} | wc -l`] })).stdout.trim();
    expect(left).toBe('0');
  });

  it('16 MiB garbage lines on stdout without end: the supervisor’s memory stays bounded and the neighbour answers', async () => {
    // Lines just under the relay's 16 MiB limit, none of them JSON, as fast as the pipe takes them.
    const script = "const line = Buffer.alloc(16 * 1024 * 1024 - 1024, 0x78); line[line.length - 1] = 10; const write = () => process.stdout.write(line, write); write(); setInterval(() => {}, 1e9);";
    const rssBefore = process.memoryUsage().rss;
    sup.add('garbage', { command: 'node', args: ['-e', script], box: { client: 'external' } });
    await waitForState(sup, 'garbage', ['ready', 'failed']);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    try {
      const times = await neighbourRoundTrips(40);
      const lines = sup.logs('garbage', 0, 5000).lines.filter((l) => l.source === 'stdout');
      console.log(`[hostile] 16 MiB garbage: ${lines.length} lines logged; RSS ${Math.round(rssBefore / MIB)} → peak ${Math.round(peak / MIB)} MiB; neighbour max ${Math.max(...times)} ms`);
      expect(lines.length).toBeGreaterThan(3);
      for (const l of lines) expect(l.text.length).toBeLessThan(8 * 1024);
      expect(peak - rssBefore).toBeLessThan(300 * MIB);
      expect(Math.max(...times)).toBeLessThan(1000);
    } finally {
      clearInterval(sampler);
    }
    await sup.remove('garbage');
  });
});
