/**
 * The Docker engine itself goes away (the suite's dockerd is stopped, which stops every container)
 * while servers are ready and while one is installing, and comes back: every server reports
 * box_unavailable / ENGINE_UNREACHABLE while it is away without spending its restart budget, and
 * everything is ready again within 30 s of the engine's return, in one session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import type { StatusEvent } from '../../src/supervisor/types.js';
import { findDockerd, startEngine, stopEngine } from '../helpers/engine-control.js';
import { copyFixture, type TempFolder } from '../helpers/folders.js';
import { docker, eventually } from '../helpers/runtime.js';
import { supervisorWithPythonAndNode, waitForState } from '../helpers/supervisor.js';

/** How long the engine stays away once every server has noticed: several attempts fail meanwhile. */
const OUTAGE_MS = 8000;

describe('engine restart', () => {
  let sup: Supervisor;
  const folders: TempFolder[] = [];
  const events: StatusEvent[] = [];
  const names = ['python', 'node', 'installing'];

  beforeAll(async () => {
    sup = await supervisorWithPythonAndNode(events, folders);
  });
  afterAll(async () => {
    await sup.close();
    for (const f of folders) f.cleanup();
  });

  it(
    'stops dockerd under ready and installing servers: ENGINE_UNREACHABLE, no budget spent, ' +
      'all ready within 30 s of its return',
    async () => {
      const engine = findDockerd();
      const fresh = copyFixture('node-mcp');
      folders.push(fresh);
      sup.add('installing', { command: 'node', args: [`${fresh.path}/server.mjs`] });
      await eventually(
        () => {
          const v = sup.get('installing');
          return v.phase === 'dep_install' &&
            v.installTaskId !== undefined &&
            sup.tasks.get(v.installTaskId).state === 'working'
            ? true
            : undefined;
        },
        60_000,
        5,
      );

      const stoppedAt = Date.now();
      await stopEngine(engine);
      const away = (name: string): boolean => {
        const v = sup.get(name);
        return v.error?.code === 'ENGINE_UNREACHABLE' && v.error.phase === 'box_unavailable';
      };
      await eventually(() => (names.every(away) ? true : undefined), 60_000, 100);
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      for (const name of names) {
        expect(sup.get(name).state).not.toBe('failed');
        expect(sup.get(name).error).toMatchObject({
          phase: 'box_unavailable',
          code: 'ENGINE_UNREACHABLE',
          retryable: true,
        });
      }

      await startEngine(engine);
      const returnedAt = Date.now();
      await Promise.all(names.map((n) => waitForState(sup, n, ['ready'], 30_000)));
      console.log(
        `[faults] engine away ${returnedAt - stoppedAt} ms; all ready ${Date.now() - returnedAt} ms after its return`,
      );

      const during = events.filter((e) => Date.parse(e.at) >= stoppedAt && names.includes(e.name));
      expect(during.filter((e) => e.state === 'failed')).toEqual([]);
      // While the engine was away the budget was never spent: no record past the first attempt.
      const records = during.filter((e) => e.state === 'backoff').map((e) => e.error);
      expect(records.length).toBeGreaterThanOrEqual(names.length * 2);
      expect(records.filter((r) => (r?.attempt ?? 0) > 1)).toEqual([]);
      const running = (
        await docker.listContainers({ filters: { label: [`mcp-box.owner=${sup.runtime.ownerId}`] } })
      ).filter((c) => c.State === 'running');
      expect(running).toHaveLength(1);
      expect(new Set(names.map((n) => sup.get(n).session))).toEqual(new Set([running[0]?.Labels['mcp-box.session']]));
      expect(await sup.callTool('python', 'upper', { text: 'back' })).toMatchObject({ content: [{ text: 'BACK' }] });
      expect(await sup.callTool('installing', 'add', { a: 40, b: 2 })).toMatchObject({ content: [{ text: '42' }] });
    },
  );
});
