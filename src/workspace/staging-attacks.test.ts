/**
 * Issue 9, item 3: staging a hostile folder never hands the tenant the supervisor's event loop,
 * its budgets, or a file from outside the folder.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { IgnoreRules } from './ignore-rules.js';
import { packFolder } from './pack-folder.js';
import { DEFAULT_STAGE_LIMITS, walkFolder } from './walk-folder.js';

const folders: string[] = [];

afterEach(() => {
  for (const f of folders.splice(0)) rmSync(f, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-attack-')));
  folders.push(root);
  return root;
}

async function rejection(p: Promise<unknown>): Promise<BoxError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BoxError);
  return err as BoxError;
}

const PATHOLOGICAL = '**a**a**a**a**a**a**a**a**a**a**a**a**a**b';

describe('a .mcpboxignore cannot freeze the process', () => {
  it('a backtracking-bait pattern against a 40-character name answers at once', () => {
    const rules = IgnoreRules.forFolder(new Set(['.mcpboxignore']), PATHOLOGICAL);
    const started = performance.now();
    const answers = [
      rules.ignores('a'.repeat(40), false),
      rules.ignores('a'.repeat(40), true),
      rules.ignores(`${'a'.repeat(40)}b`, false),
    ];
    const ms = performance.now() - started;
    process.stdout.write(`[measure] pathological pattern, 40-char name: ${ms.toFixed(2)} ms\n`);
    expect(answers).toEqual([false, false, true]);
    expect(ms).toBeLessThan(2000); // a hang guard only
  });

  it('a walk with that pattern and that file finishes', async () => {
    const root = tempRoot();
    writeFileSync(join(root, '.mcpboxignore'), `${PATHOLOGICAL}\n`);
    writeFileSync(join(root, 'a'.repeat(40)), 'x');
    const started = performance.now();
    const walk = await walkFolder(root);
    const ms = performance.now() - started;
    process.stdout.write(`[measure] walk with the pathological pattern: ${ms.toFixed(2)} ms\n`);
    expect(walk.entries.map((e) => e.rel)).toEqual(['.mcpboxignore', 'a'.repeat(40)]);
    expect(ms).toBeLessThan(2000);
  });

  it('a chain of "**/" segments (which still backtracks in any regex engine) is refused, naming the line', () => {
    const chain = `${Array.from({ length: 16 }, () => '**/a').join('/')}/b`;
    const started = performance.now();
    let err: unknown = null;
    try {
      IgnoreRules.forFolder(new Set(['.mcpboxignore']), `# ok\n*.log\n${chain}\n`).ignores(
        Array.from({ length: 31 }, () => 'a').join('/'),
        false,
      );
    } catch (e) {
      err = e;
    }
    expect(performance.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(BoxError);
    expect(err).toMatchObject({
      code: 'STAGE_FAILED',
      phase: 'workspace_stage',
      details: { path: '.mcpboxignore', line: 3 },
    });
    expect((err as BoxError).message).toContain('line 3');
  });

  it('the most "**/" segments allowed stay fast on the deepest path the budget allows', () => {
    const patterns = Array.from({ length: 10 }, (_, i) => `**/a${i}/**/a/**/b`).join('\n');
    const rules = IgnoreRules.forFolder(new Set(['.mcpboxignore']), patterns);
    const deep = Array.from({ length: DEFAULT_STAGE_LIMITS.maxDepth - 1 }, () => 'a').join('/');
    const started = performance.now();
    expect(rules.ignores(deep, false)).toBe(false);
    const ms = performance.now() - started;
    process.stdout.write(
      `[measure] 10 patterns with 3 "**" each on a ${DEFAULT_STAGE_LIMITS.maxDepth - 1}-level path: ` +
        `${ms.toFixed(2)} ms\n`,
    );
    expect(ms).toBeLessThan(2000);
  });
});

describe('every entry counts against maxFiles', () => {
  it.each([
    { kind: 'folders', make: (root: string, i: number) => mkdirSync(join(root, `d${i}`)) },
    { kind: 'links', make: (root: string, i: number) => symlinkSync('missing', join(root, `l${i}`)) },
  ])('50 $kind with maxFiles 10 exceed the budget', async ({ make }) => {
    const root = tempRoot();
    for (let i = 0; i < 50; i++) make(root, i);
    const err = await rejection(
      Promise.resolve().then(() => walkFolder(root, { ...DEFAULT_STAGE_LIMITS, maxFiles: 10 })),
    );
    expect(err.code).toBe('STAGE_LIMIT_EXCEEDED');
    expect(err.phase).toBe('workspace_stage');
    expect(err.message).toContain('more than 10 files, folders and links (limit 10)');
    expect(err.details).toMatchObject({ value: 10 });
  });
});

describe('the walk does not block the event loop', () => {
  it('walking 20,000 entries never holds the loop for long', { timeout: 60_000 }, async () => {
    const root = tempRoot();
    for (let d = 0; d < 40; d++) {
      mkdirSync(join(root, `d${d}`));
      for (let f = 0; f < 499; f++) writeFileSync(join(root, `d${d}`, `f${f}.txt`), '');
    }
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    await sleep(30); // let the monitor's timer start before the walk
    const started = performance.now();
    const walk = await walkFolder(root, { ...DEFAULT_STAGE_LIMITS, maxFiles: 20_000 });
    const ms = performance.now() - started;
    await sleep(30);
    lag.disable();
    const max = lag.max / 1e6;
    process.stdout.write(
      `[measure] walk of ${walk.entries.length} entries: ${ms.toFixed(0)} ms; ` +
        `loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${max.toFixed(1)} ms\n`,
    );
    expect(walk.entries.length).toBe(20_000);
    expect(max).toBeLessThan(150); // a guard (the old walk held it 190-260 ms here): the walk yields every ~10 ms
  });
});

describe('a parent folder swapped for a symlink is never followed out of the folder', () => {
  it('the pack refuses a file whose parent now leads outside, even with the outside inode', async () => {
    const root = tempRoot();
    const outside = tempRoot();
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(root, 'a.txt'), 'inside a');
    writeFileSync(join(root, 'sub', 'secret.txt'), 'inside secret');
    writeFileSync(join(outside, 'secret.txt'), 'OUTSIDE SECRET CONTENT');
    const walk = await walkFolder(root);
    // The race: `sub` becomes a link to the outside folder, and the walk's lstat of the file went
    // through it (so the walk recorded the outside file's inode and size).
    renameSync(join(root, 'sub'), join(root, 'sub.orig'));
    symlinkSync(outside, join(root, 'sub'));
    const st = statSync(join(outside, 'secret.txt'));
    const entry = walk.entries.find((e) => e.rel === 'sub/secret.txt');
    expect(entry).toBeDefined();
    Object.assign(entry ?? {}, { dev: st.dev, ino: st.ino, size: st.size });
    const { stream, done } = packFolder(walk, { uid: 1, gid: 1 });
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('error', () => undefined);
    const err = await rejection(done);
    expect(err.code).toBe('STAGE_FAILED');
    expect(err.phase).toBe('workspace_stage');
    expect(err.message).toContain('"sub/secret.txt"');
    expect(err.details).toMatchObject({ path: 'sub/secret.txt' });
    expect(Buffer.concat(chunks).includes(Buffer.from('OUTSIDE SECRET'))).toBe(false);
  });

  it('a walk racing a parent swapped back and forth never lists the outside folder', { timeout: 60_000 }, async () => {
    const root = tempRoot();
    const outside = tempRoot();
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(root, 'sub', 'inside.txt'), 'i');
    writeFileSync(join(outside, 'OUTSIDE-ONLY.txt'), 'o');
    symlinkSync(outside, join(root, 'sublink'));
    // `sub` is a folder, then a link to the outside folder, then a folder again, as fast as sh goes.
    const swapper = spawn(
      'sh',
      [
        '-c',
        'cd "$1"; while :; do mv -T sub sub.real; mv -T sublink sub; mv -T sub sublink; mv -T sub.real sub; done',
        'sh',
        root,
      ],
      { stdio: 'ignore', detached: true },
    );
    const swapperExited = new Promise((resolve) => swapper.once('exit', resolve));
    const seen = { leaked: 0, refused: 0, clean: 0 };
    try {
      for (let i = 0; i < 3000; i++) {
        try {
          const walk = await walkFolder(root);
          if (walk.entries.some((e) => e.rel.includes('OUTSIDE-ONLY'))) seen.leaked++;
          else seen.clean++;
        } catch (err) {
          expect(err).toMatchObject({ code: 'STAGE_FAILED', phase: 'workspace_stage' });
          seen.refused++;
        }
      }
    } finally {
      // The whole group (sh and the mv it runs), and only then may the folders be removed.
      process.kill(-(swapper.pid as number), 'SIGKILL');
      await swapperExited;
    }
    process.stdout.write(`[measure] 3000 walks against a parent swap loop: ${JSON.stringify(seen)}\n`);
    expect(seen.leaked).toBe(0);
    expect(seen.clean).toBeGreaterThan(0);
  });

  it('a FIFO named .mcpboxignore does not hang the walk', async () => {
    const root = tempRoot();
    writeFileSync(join(root, 'x.txt'), 'x');
    execFileSync('mkfifo', [join(root, '.mcpboxignore')]);
    const err = await rejection(Promise.resolve().then(() => walkFolder(root)));
    expect(err.code).toBe('STAGE_FAILED');
    expect(err.message).toContain('".mcpboxignore"');
  });
});
