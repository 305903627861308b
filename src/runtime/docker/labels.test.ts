import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MCP_BOX_VERSION } from '../../version.js';
import {
  currentOwner,
  LABEL_MANAGED,
  LABEL_OWNER,
  LABEL_OWNER_BOOT,
  LABEL_OWNER_HOST,
  LABEL_OWNER_PID,
  LABEL_OWNER_PID_START,
  LABEL_VERSION,
  ownerLabels,
  ownerLiveness,
  processStartTicks,
} from './labels.js';
import type { OwnerLiveness } from './labels.js';

/** Above PID_MAX_LIMIT (2^22): no process can ever have it. */
const IMPOSSIBLE_PID = 4_194_305;

const mine = (): Record<string, string> => ownerLabels(currentOwner('x'));

describe('currentOwner / ownerLabels', () => {
  it('describes this process', () => {
    const owner = currentOwner('owner-id');
    expect(owner.id).toBe('owner-id');
    expect(owner.host).toBe(hostname());
    expect(owner.pid).toBe(process.pid);
    expect(owner.pidStart).toMatch(/^\d+$/);
  });

  it('records every owner field as a label', () => {
    const owner = { id: 'o', host: 'h', bootId: 'b', pid: 12, pidStart: '34' };
    expect(ownerLabels(owner)).toEqual({
      [LABEL_MANAGED]: 'true',
      [LABEL_VERSION]: MCP_BOX_VERSION,
      [LABEL_OWNER]: 'o',
      [LABEL_OWNER_HOST]: 'h',
      [LABEL_OWNER_BOOT]: 'b',
      [LABEL_OWNER_PID]: '12',
      [LABEL_OWNER_PID_START]: '34',
    });
  });
});

describe('ownerLiveness', () => {
  const exitedChildPid = (): number => {
    const res = spawnSync(process.execPath, ['-e', '0']);
    return res.pid;
  };

  it.each<{ name: string; labels: () => Record<string, string>; expected: OwnerLiveness }>([
    { name: 'the current process', labels: mine, expected: 'alive' },
    {
      name: 'the current process without a recorded pid-start',
      labels: () => ({ ...mine(), [LABEL_OWNER_PID_START]: '' }),
      expected: 'alive',
    },
    {
      name: 'the current process without a recorded boot id',
      labels: () => ({ ...mine(), [LABEL_OWNER_BOOT]: '' }),
      expected: 'alive',
    },
    {
      name: 'the current process without boot or pid-start labels',
      labels: () => {
        const l = mine();
        delete l[LABEL_OWNER_BOOT];
        delete l[LABEL_OWNER_PID_START];
        return l;
      },
      expected: 'alive',
    },
    {
      name: 'a pid that cannot exist',
      labels: () => ({ ...mine(), [LABEL_OWNER_PID]: String(IMPOSSIBLE_PID) }),
      expected: 'dead',
    },
    {
      name: 'a child process that has exited',
      labels: () => ({ ...mine(), [LABEL_OWNER_PID]: String(exitedChildPid()), [LABEL_OWNER_PID_START]: '' }),
      expected: 'dead',
    },
    {
      name: 'the same pid with a different pid-start (pid reused)',
      labels: () => {
        const l = mine();
        return { ...l, [LABEL_OWNER_PID_START]: String(Number(l[LABEL_OWNER_PID_START]) + 1) };
      },
      expected: 'dead',
    },
    {
      name: 'a different boot id',
      labels: () => ({ ...mine(), [LABEL_OWNER_BOOT]: '00000000-0000-0000-0000-000000000000' }),
      expected: 'dead',
    },
    {
      name: 'another host',
      labels: () => ({ ...mine(), [LABEL_OWNER_HOST]: `${hostname()}-elsewhere` }),
      expected: 'unknown',
    },
    {
      name: 'another host even with a dead pid',
      labels: () => ({ ...mine(), [LABEL_OWNER_HOST]: `not-${hostname()}`, [LABEL_OWNER_PID]: String(IMPOSSIBLE_PID) }),
      expected: 'unknown',
    },
    { name: 'no labels at all', labels: () => ({}), expected: 'unknown' },
    {
      name: 'a missing host label',
      labels: () => {
        const l = mine();
        delete l[LABEL_OWNER_HOST];
        return l;
      },
      expected: 'unknown',
    },
    {
      name: 'a missing pid label',
      labels: () => {
        const l = mine();
        delete l[LABEL_OWNER_PID];
        return l;
      },
      expected: 'unknown',
    },
    { name: 'a non-numeric pid', labels: () => ({ ...mine(), [LABEL_OWNER_PID]: 'abc' }), expected: 'unknown' },
    { name: 'pid 0', labels: () => ({ ...mine(), [LABEL_OWNER_PID]: '0' }), expected: 'unknown' },
    { name: 'a negative pid', labels: () => ({ ...mine(), [LABEL_OWNER_PID]: '-5' }), expected: 'unknown' },
    { name: 'a fractional pid', labels: () => ({ ...mine(), [LABEL_OWNER_PID]: '1.5' }), expected: 'unknown' },
  ])('$name is $expected', ({ labels, expected }) => {
    expect(ownerLiveness(labels())).toBe(expected);
  });

  it('turns dead once a live child exits', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const pid = child.pid ?? -1;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const labels = ownerLabels({ ...currentOwner('child'), pid, pidStart: processStartTicks(pid) ?? '' });
      expect(labels[LABEL_OWNER_PID_START]).toMatch(/^\d+$/);
      expect(ownerLiveness(labels)).toBe('alive');
      child.kill('SIGKILL');
      await exited;
      expect(ownerLiveness(labels)).toBe('dead');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('processStartTicks', () => {
  it('is a digit string for the current process and stable across calls', () => {
    const ticks = processStartTicks(process.pid);
    expect(ticks).toMatch(/^\d+$/);
    expect(processStartTicks(process.pid)).toBe(ticks);
    expect(currentOwner('y').pidStart).toBe(ticks);
  });

  it.each([IMPOSSIBLE_PID, -1, 0])('is null for pid %i', (pid) => {
    expect(processStartTicks(pid)).toBeNull();
  });

  it('reads the right field when the command name contains spaces and parentheses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-box-labels-'));
    const weird = join(dir, 'a) b) c d');
    copyFileSync('/bin/sleep', weird);
    chmodSync(weird, 0o755);
    const child = spawn(weird, ['30'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      const childTicks = processStartTicks(child.pid ?? -1);
      const ownTicks = processStartTicks(process.pid);
      expect(childTicks).toMatch(/^\d+$/);
      // The child started after this process: its start time cannot be earlier.
      expect(Number(childTicks)).toBeGreaterThanOrEqual(Number(ownTicks));
    } finally {
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
