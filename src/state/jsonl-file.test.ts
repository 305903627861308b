import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonlFile } from './jsonl-file.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'mcp-box-jsonl-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A path whose parent is a regular file: every mkdir and write under it fails with ENOTDIR, even as root. */
function unwritablePath(): { blocker: string; path: string } {
  const blocker = join(tempDir(), 'not-a-dir');
  writeFileSync(blocker, 'a regular file');
  return { blocker, path: join(blocker, 'servers', 'x.jsonl') };
}

describe('JsonlFile: write errors', () => {
  it(
    'a failing write throws from neither the constructor, append, flush nor the timer; ' +
      'each failure is counted and reported',
    async () => {
      const { path } = unwritablePath();
      const reported: Error[] = [];
      const f = new JsonlFile(path, 1024 * 1024, { onWriteError: (err) => reported.push(err) });
      const afterConstructor = f.writeErrors;
      expect(afterConstructor).toBe(1); // its directory could not be made
      f.append({ n: 1 });
      f.flush();
      expect(f.writeErrors).toBe(2);
      expect(f.droppedRecords).toBe(1);
      expect(f.lastWriteError).toMatch(/ENOTDIR/);
      f.append({ n: 2 }); // flushed by the timer: a throw there would be an uncaught exception
      await sleep(250);
      expect(f.writeErrors).toBe(3);
      expect(f.droppedRecords).toBe(2);
      expect(reported).toHaveLength(3);
      expect(reported.every((e) => (e as NodeJS.ErrnoException).code === 'ENOTDIR')).toBe(true);
    },
  );

  it('a throwing onWriteError callback does not escape either', () => {
    const f = new JsonlFile(unwritablePath().path, 1024, {
      onWriteError: () => {
        throw new Error('a bug in the logger');
      },
    });
    f.append({ n: 1 });
    expect(() => f.flush()).not.toThrow();
    expect(f.writeErrors).toBe(2);
  });

  it('appends succeed again once the cause is gone (its directory is made again)', () => {
    const { blocker, path } = unwritablePath();
    const f = new JsonlFile(path, 1024 * 1024);
    f.append({ lost: 1 });
    f.flush();
    expect(f.writeErrors).toBe(2);
    rmSync(blocker);
    f.append({ kept: 1 });
    f.flush();
    f.append({ kept: 2 });
    f.flush();
    expect(f.writeErrors).toBe(2);
    expect(f.readAll()).toEqual([{ kept: 1 }, { kept: 2 }]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it(
    'a rotation that fails is counted, the batch is dropped ' + 'so the file stays within its cap, and serving goes on',
    () => {
      const dir = tempDir();
      const path = join(dir, 'x.jsonl');
      mkdirSync(join(`${path}.1`, 'in-the-way'), { recursive: true }); // renaming onto a non-empty directory fails
      const reported: string[] = [];
      const f = new JsonlFile(path, 200, {
        onWriteError: (err) => reported.push((err as NodeJS.ErrnoException).code ?? ''),
      });
      for (let i = 0; i < 20; i++) {
        f.append({ i, pad: 'x'.repeat(20) });
        f.flush();
      }
      expect(f.writeErrors).toBeGreaterThan(0);
      expect(reported.every((code) => code === 'EISDIR' || code === 'ENOTEMPTY')).toBe(true);
      expect(statSync(path).size).toBeLessThanOrEqual(200);
      rmSync(`${path}.1`, { recursive: true });
      f.append({ i: 99 });
      f.flush();
      expect(f.readAll<{ i: number }>().at(-1)?.i).toBe(99);
    },
  );
});

describe('JsonlFile: pending bytes', () => {
  it('holds at most maxPendingBytes between flushes: an append past the bound writes the batch at once', () => {
    const path = join(tempDir(), 'x.jsonl');
    const bound = 1000;
    const f = new JsonlFile(path, 10 * 1024 * 1024, { maxPendingBytes: bound });
    const record = { pad: 'x'.repeat(90) };
    const recordBytes = Buffer.byteLength(`${JSON.stringify(record)}\n`);
    for (let i = 1; i <= 100; i++) {
      f.append(record);
      // No flush and no timer yet: whatever is not on disk is held in memory.
      const held = (i - f.readAll().length) * recordBytes;
      expect(held).toBeLessThanOrEqual(bound);
    }
    expect(f.readAll().length).toBeGreaterThan(80);
    f.flush();
    expect(f.readAll()).toHaveLength(100);
  });

  it('a single record larger than the bound is written at once', () => {
    const f = new JsonlFile(join(tempDir(), 'x.jsonl'), 10 * 1024 * 1024, { maxPendingBytes: 100 });
    f.append({ small: 1 });
    expect(f.readAll()).toEqual([]);
    f.append({ big: 'y'.repeat(500) });
    expect(f.readAll()).toEqual([{ small: 1 }, { big: 'y'.repeat(500) }]);
  });
});
