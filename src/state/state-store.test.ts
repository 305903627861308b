import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonlFile } from './jsonl-file.js';
import { StateStore } from './state-store.js';
import type { StatusEvent } from '../supervisor/types.js';
import type { TaskRecord } from '../tasks/task-registry.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'mcp-box-state-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('JsonlFile', () => {
  it('appends records, reads them back in order, and creates the file 0600', () => {
    const f = new JsonlFile(join(tempDir(), 'a', 'x.jsonl'), 1024 * 1024);
    f.append({ n: 1 });
    f.append({ n: 2 });
    f.flush();
    expect(f.readAll()).toEqual([{ n: 1 }, { n: 2 }]);
    expect(statSync(f.path).mode & 0o777).toBe(0o600);
  });

  it('rotates past the cap, keeping one predecessor, so the total stays bounded', () => {
    const f = new JsonlFile(join(tempDir(), 'x.jsonl'), 200);
    for (let i = 0; i < 100; i++) {
      f.append({ i, pad: 'x'.repeat(20) });
      f.flush();
    }
    const all = f.readAll<{ i: number }>();
    expect(all.at(-1)?.i).toBe(99);
    expect(all.length).toBeLessThan(20);
    expect(all.map((r) => r.i)).toEqual([...all.map((r) => r.i)].sort((a, b) => a - b));
    expect(statSync(f.path).size).toBeLessThanOrEqual(200 + 40);
  });

  it('skips a torn last line (a crash mid-write)', () => {
    const dir = tempDir();
    const f = new JsonlFile(join(dir, 'x.jsonl'), 1024);
    f.append({ ok: 1 });
    f.flush();
    appendFileSync(join(dir, 'x.jsonl'), '{"torn":');
    expect(new JsonlFile(join(dir, 'x.jsonl'), 1024).readAll()).toEqual([{ ok: 1 }]);
  });
});

describe('StateStore', () => {
  const event = (state: StatusEvent['state']): StatusEvent => ({
    name: 'a',
    state,
    previous: null,
    at: new Date().toISOString(),
  });

  it('gives back what a server left: logs, history, the last failure; and finished tasks', () => {
    const dir = tempDir();
    const store = new StateStore(dir);
    store.appendLog('a', { seq: 1, at: 't', source: 'lifecycle', text: 'one' });
    store.appendHistory('a', event('starting'));
    store.appendHistory('a', event('failed'));
    store.appendFailure('a', {
      phase: 'runtime',
      code: 'PROCESS_EXITED',
      message: 'first',
      retryable: true,
      stderrTail: '',
      durationMs: 1,
      attempt: 1,
      maxAttempts: 2,
      at: 't',
    });
    store.appendFailure('a', {
      phase: 'mcp_init',
      code: 'MCP_INIT_TIMEOUT',
      message: 'second',
      retryable: true,
      stderrTail: '',
      durationMs: 1,
      attempt: 2,
      maxAttempts: 2,
      at: 't',
    });
    store.flush();
    const again = new StateStore(dir);
    const a = again.loadServer('a');
    expect(a.logs.map((l) => l.text)).toEqual(['one']);
    expect(a.history.map((h) => h.state)).toEqual(['starting', 'failed']);
    expect(a.lastFailure?.message).toBe('second');
    expect(again.knownServers()).toEqual(['a']);
    again.forgetServer('a');
    expect(again.knownServers()).toEqual([]);
    expect(again.loadServer('a')).toEqual({ logs: [], history: [], lastFailure: undefined });
  });

  it('writes a task that starts at once (no flush needed), and gives back both of its records in order', () => {
    const dir = tempDir();
    const store = new StateStore(dir);
    const task: TaskRecord = {
      id: 'task_1',
      kind: 'install',
      subject: 'a',
      state: 'working',
      progress: 'starting',
      startedAt: 't0',
      endedAt: null,
      elapsedMs: 0,
      outputLines: 0,
      error: null,
    };
    store.appendTask(task);
    // What a kill -9 right now would leave on disk:
    expect(new StateStore(dir).loadTasks()).toEqual([task]);
    store.appendTask({ ...task, state: 'completed', progress: 'completed', endedAt: 't1', elapsedMs: 5 });
    store.flush();
    expect(new StateStore(dir).loadTasks().map((t) => t.state)).toEqual(['working', 'completed']);
  });

  it('writes nothing a reader cannot parse', () => {
    const dir = tempDir();
    const store = new StateStore(dir);
    store.appendLog('b', { seq: 1, at: 't', source: 'stderr', text: 'line with "quotes" and \\n escapes' });
    store.flush();
    const raw = readFileSync(join(dir, 'servers', 'b', 'log.jsonl'), 'utf8');
    expect(
      raw
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as unknown),
    ).toHaveLength(1);
  });

  it(
    'a state directory that cannot be written never throws ' +
      'into its callers; each failure is reported with its path',
    () => {
      const blocker = join(tempDir(), 'not-a-dir');
      writeFileSync(blocker, 'a regular file');
      const reported: { code: string | undefined; path: string }[] = [];
      const store = new StateStore(join(blocker, 'state'), undefined, {
        onWriteError: (err, path) => reported.push({ code: (err as NodeJS.ErrnoException).code, path }),
      });
      const task: TaskRecord = {
        id: 'task_1',
        kind: 'install',
        subject: 'a',
        state: 'working',
        progress: 'starting',
        startedAt: 't0',
        endedAt: null,
        elapsedMs: 0,
        outputLines: 0,
        error: null,
      };
      expect(() => {
        store.appendLog('a', { seq: 1, at: 't', source: 'lifecycle', text: 'one' });
        store.appendTask(task); // flushed at once
        store.flush();
      }).not.toThrow();
      expect(store.writeErrors).toBe(reported.length);
      expect(reported.length).toBeGreaterThanOrEqual(3);
      expect(reported.every((r) => r.code === 'ENOTDIR')).toBe(true);
      expect(reported.map((r) => r.path)).toEqual(
        expect.arrayContaining([
          join(blocker, 'state', 'tasks.jsonl'),
          join(blocker, 'state', 'servers', 'a', 'log.jsonl'),
        ]),
      );
    },
  );
});
