/**
 * The session container dies under ready, staging and installing servers (`docker kill`,
 * `docker rm -f`, also after a relay takeover and reconnect): every server comes back `ready`, each
 * records the death once in the phase it was in, and recovery is a warm restart — the replacement
 * session re-attaches the workspace volume, so installed dependencies are not installed again.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import type { FailureRecord, StatusEvent } from '../../src/supervisor/types.js';
import { copyFixture, tempFolder, type TempFolder } from '../helpers/folders.js';
import { docker, eventually } from '../helpers/runtime.js';
import { supervisorWithPythonAndNode, waitForState } from '../helpers/supervisor.js';

describe('recovery from a dead session container', () => {
  let sup: Supervisor;
  const folders: TempFolder[] = [];
  const events: StatusEvent[] = [];
  const failuresOf = (name: string, since: number): FailureRecord[] =>
    events
      .filter((e) => e.name === name && e.state === 'backoff' && Date.parse(e.at) >= since && e.error !== undefined)
      .map((e) => e.error as FailureRecord);
  const logSince = (name: string, seq: number): string =>
    sup
      .logs(name, seq, 2000)
      .lines.map((l) => l.text)
      .join('\n');
  const lastSeq = (name: string): number => sup.logs(name, 0, 2000).next;
  /** phase and code of each failure, with the message when there is more than one (a readable diff). */
  const summary = (failures: FailureRecord[]): string[] =>
    failures.map((f) => `${f.phase} ${f.code}${failures.length > 1 ? `: ${f.message}` : ''}`);
  const allReady = (names: string[], timeoutMs = 120_000): Promise<unknown> =>
    Promise.all(names.map((n) => waitForState(sup, n, ['ready'], timeoutMs)));

  beforeAll(async () => {
    sup = await supervisorWithPythonAndNode(events, folders);
  });
  afterAll(async () => {
    await sup.close();
    for (const f of folders) f.cleanup();
  });

  it(
    'docker kill while ready: CONTAINER_DIED once each, ' + 'back to ready on the same volume without reinstalling',
    async () => {
      // The yardstick: a warm restart of both servers in the live session.
      const warmStarted = Date.now();
      await Promise.all([sup.restart('python'), sup.restart('node')]);
      await allReady(['python', 'node']);
      const warmMs = Date.now() - warmStarted;

      const before = sup.get('python');
      const seq = { python: lastSeq('python'), node: lastSeq('node') };
      const volume = sup.runtime.sessions().find((s) => s.info.name === before.session)?.info.volume;
      const killedAt = Date.now();
      await docker.getContainer(before.session as string).kill();
      await eventually(
        () => (failuresOf('python', killedAt).length > 0 && failuresOf('node', killedAt).length > 0 ? true : undefined),
        30_000,
      );
      await allReady(['python', 'node']);
      const recoveryMs = Date.now() - killedAt;
      console.log(
        `[faults] docker kill while ready: recovered in ${recoveryMs} ms; ` +
          `warm restart ${warmMs} ms (${(recoveryMs / warmMs).toFixed(2)}×)`,
      );

      for (const name of ['python', 'node']) {
        const failures = failuresOf(name, killedAt);
        expect(summary(failures)).toEqual(['runtime CONTAINER_DIED']);
        expect(failures[0]).toMatchObject({ retryable: true, attempt: 1 });
        const log = logSince(name, seq[name as 'python' | 'node']);
        expect(log).toMatch(/dependencies up to date/);
        expect(log).not.toMatch(/installed (python|node)/);
      }
      const after = sup.get('python');
      expect(after.session).not.toBe(before.session);
      expect(after.uid).toBe(before.uid);
      expect(sup.runtime.sessions().find((s) => s.info.name === after.session)?.info.volume).toBe(volume);
      expect(await sup.callTool('python', 'upper', { text: 'revived' })).toMatchObject({
        content: [{ text: 'REVIVED' }],
      });
      expect(await sup.callTool('node', 'add', { a: 1, b: 2 })).toMatchObject({ content: [{ text: '3' }] });
    },
  );

  it('docker rm -f after a relay takeover and reconnect: back to ready, no duplicate session', async () => {
    const url = sup.get('python').relay?.url as string;
    const { WebSocket } = await import('ws');
    const seq = lastSeq('python');
    const intruder = new WebSocket(url, 'mcp', {
      headers: { Authorization: `Bearer ${sup.token}`, 'X-MCP-Box-Exclusive': '1', 'X-MCP-Box-Takeover': '1' },
    });
    await new Promise((r) => intruder.once('open', r));
    await eventually(() => (logSince('python', seq).includes('relay reconnected') ? true : undefined), 15_000);
    intruder.close();

    const session = sup.get('python').session as string;
    const removedAt = Date.now();
    await docker.getContainer(session).remove({ force: true });
    await eventually(() => (failuresOf('python', removedAt).length > 0 ? true : undefined), 30_000);
    await allReady(['python', 'node']);
    expect(summary(failuresOf('python', removedAt))).toEqual(['runtime CONTAINER_DIED']);
    const alive = (
      await docker.listContainers({ filters: { label: [`mcp-box.owner=${sup.runtime.ownerId}`] } })
    ).filter((c) => c.State === 'running');
    expect(alive).toHaveLength(1);
    expect(sup.get('node').session).toBe(sup.get('python').session);
    expect(await sup.callTool('python', 'upper', { text: 'again' })).toMatchObject({ content: [{ text: 'AGAIN' }] });
  });

  it('docker rm -f during staging: SESSION_DEAD in workspace_stage, then ready', async () => {
    const bulky = tempFolder();
    folders.push(bulky);
    // Enough bytes that the extraction is still running when the kill lands.
    for (let i = 0; i < 4; i++) writeFileSync(`${bulky.path}/blob-${i}.bin`, Buffer.alloc(16 * 1024 * 1024, i));
    bulky.write('server.py', 'import sys\nfor line in sys.stdin: pass\n');
    sup.add('bulky', { command: 'python3', args: [`${bulky.path}/server.py`], box: { client: 'external' } });
    await eventually(() => (sup.get('bulky').phase === 'workspace_stage' ? true : undefined), 30_000, 2);
    const killedAt = Date.now();
    await docker.getContainer(sup.get('bulky').session as string).remove({ force: true });
    await allReady(['bulky', 'python', 'node']);
    const failures = failuresOf('bulky', killedAt);
    expect(summary(failures)).toEqual(['workspace_stage SESSION_DEAD']);
    expect(failures[0]).toMatchObject({ retryable: true, attempt: 1 });
    await sup.remove('bulky');
  });

  it('docker kill during an install: SESSION_DEAD in dep_install, the install runs again, then ready', async () => {
    const node2 = copyFixture('node-mcp');
    folders.push(node2);
    sup.add('installing', { command: 'node', args: [`${node2.path}/server.mjs`] });
    const taskId = await eventually(
      () => {
        const v = sup.get('installing');
        return v.phase === 'dep_install' &&
          v.installTaskId !== undefined &&
          sup.tasks.get(v.installTaskId).state === 'working'
          ? v.installTaskId
          : undefined;
      },
      60_000,
      5,
    );
    const killedAt = Date.now();
    await docker.getContainer(sup.get('installing').session as string).kill();
    await allReady(['installing', 'python', 'node'], 180_000);
    const failures = failuresOf('installing', killedAt);
    expect(summary(failures)).toEqual(['dep_install SESSION_DEAD']);
    expect(failures[0]).toMatchObject({ retryable: true, attempt: 1 });
    expect(sup.tasks.get(taskId).state).toBe('failed');
    const again = sup.get('installing').installTaskId as string;
    expect(again).not.toBe(taskId);
    expect(sup.tasks.get(again).state).toBe('completed');
    expect(await sup.callTool('installing', 'add', { a: 20, b: 22 })).toMatchObject({ content: [{ text: '42' }] });
  });
});
