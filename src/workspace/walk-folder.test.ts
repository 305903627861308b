import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_STAGE_LIMITS, judgeLink, walkFolder, type StageLimits, type WalkResult } from './walk-folder.js';
import { BoxError } from '../errors/box-error.js';

const folders: string[] = [];
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  for (const f of folders.splice(0)) rmSync(f, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-walk-')));
  folders.push(root);
  return root;
}

/** Writes files (string content) and creates folders (null) under `root`. */
function tree(root: string, spec: Record<string, string | null>): void {
  for (const [rel, content] of Object.entries(spec)) {
    const path = join(root, rel);
    if (content === null) mkdirSync(path, { recursive: true });
    else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    }
  }
}

/** Awaits `p`, which must reject with a BoxError, and returns it. */
async function thrownAsync(p: Promise<unknown>): Promise<BoxError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BoxError);
  return err as BoxError;
}

const rels = (walk: WalkResult): string[] => walk.entries.map((e) => e.rel);

describe('walkFolder: entries', () => {
  it('lists entries sorted, parents before children, with types, sizes and lstat identity', async () => {
    const root = tempRoot();
    tree(root, {
      'b.txt': 'bee',
      'a/z.txt': 'zzzz',
      'a/m/k.txt': '',
      'a/empty': null,
      'C.md': 'upper',
      'run.sh': '#!/bin/sh\n',
    });
    chmodSync(join(root, 'run.sh'), 0o755);
    symlinkSync('a/z.txt', join(root, 'link-in'));
    const walk = await walkFolder(root);
    expect(walk.root).toBe(root);
    expect(rels(walk)).toEqual(['C.md', 'a', 'a/empty', 'a/m', 'a/m/k.txt', 'a/z.txt', 'b.txt', 'link-in', 'run.sh']);
    const byRel = new Map(walk.entries.map((e) => [e.rel, e]));
    expect(Object.fromEntries(walk.entries.map((e) => [e.rel, e.type]))).toEqual({
      'C.md': 'file',
      a: 'dir',
      'a/empty': 'dir',
      'a/m': 'dir',
      'a/m/k.txt': 'file',
      'a/z.txt': 'file',
      'b.txt': 'file',
      'link-in': 'symlink',
      'run.sh': 'file',
    });
    expect(byRel.get('a/z.txt')?.size).toBe(4);
    expect(byRel.get('a')?.size).toBe(0);
    expect(byRel.get('link-in')?.size).toBe(0);
    expect(byRel.get('link-in')?.linkTarget).toBe('a/z.txt');
    expect(byRel.get('b.txt')?.linkTarget).toBeUndefined();
    expect(byRel.get('run.sh')?.mode).toBe(0o755);
    for (const e of walk.entries) {
      const st = lstatSync(join(root, e.rel));
      expect({ rel: e.rel, ino: e.ino, dev: e.dev, mtimeMs: e.mtimeMs, mode: e.mode }).toEqual({
        rel: e.rel,
        ino: st.ino,
        dev: st.dev,
        mtimeMs: st.mtimeMs,
        mode: st.mode & 0o7777,
      });
    }
    expect(walk.files).toBe(5);
    expect(walk.bytes).toBe(3 + 4 + 0 + 5 + 10);
    expect(walk.dropped).toEqual([]);
    expect(walk.ignored).toBe(0);
    // Every entry's parent folder appears before it.
    const seen = new Set<string>();
    for (const rel of rels(walk)) {
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : null;
      if (parent !== null) expect(seen.has(parent)).toBe(true);
      seen.add(rel);
    }
  });

  it('an empty folder walks to nothing', async () => {
    const walk = await walkFolder(tempRoot());
    expect(walk).toMatchObject({ entries: [], dropped: [], ignored: 0, bytes: 0, files: 0 });
  });

  it('keeps inside relative links, drops absolute and escaping ones with reasons, never follows links', async () => {
    const root = tempRoot();
    tree(root, { 'a.txt': 'a', 'sub/inner.txt': 'i', 'dir/x.txt': 'x' });
    symlinkSync('../a.txt', join(root, 'sub', 'up-inside'));
    symlinkSync('dir', join(root, 'dirlink'));
    symlinkSync('missing-target', join(root, 'dangling'));
    symlinkSync('/etc/hostname', join(root, 'abs'));
    symlinkSync(join(root, 'a.txt'), join(root, 'abs-into-self'));
    symlinkSync('../outside', join(root, 'escape'));
    symlinkSync('../../etc', join(root, 'sub', 'escape2'));
    const walk = await walkFolder(root);
    const links = walk.entries.filter((e) => e.type === 'symlink').map((e) => [e.rel, e.linkTarget]);
    expect(links).toEqual([
      ['dangling', 'missing-target'],
      ['dirlink', 'dir'],
      ['sub/up-inside', '../a.txt'],
    ]);
    expect(rels(walk).some((r) => r.startsWith('dirlink/'))).toBe(false);
    expect(walk.dropped).toEqual([
      { rel: 'abs', reason: 'absolute link to "/etc/hostname"' },
      { rel: 'abs-into-self', reason: `absolute link to ${JSON.stringify(join(root, 'a.txt'))}` },
      { rel: 'escape', reason: 'link to "../outside" leaves the folder' },
      { rel: 'sub/escape2', reason: 'link to "../../etc" leaves the folder' },
    ]);
    expect(rels(walk)).not.toContain('abs');
    expect(walk.files).toBe(3);
  });
});

describe('judgeLink', () => {
  it.each([
    { rel: 'l', target: '', expected: 'empty link' },
    { rel: 'l', target: '/etc/passwd', expected: 'absolute link to "/etc/passwd"' },
    { rel: 'a/b/l', target: '/', expected: 'absolute link to "/"' },
    { rel: 'l', target: 'x', expected: null },
    { rel: 'l', target: '.', expected: null },
    { rel: 'l', target: './x/../y', expected: null },
    { rel: 'a/l', target: '../x', expected: null },
    { rel: 'a/b/l', target: '../../c', expected: null },
    { rel: 'a/l', target: '..', expected: null },
    { rel: 'l', target: '..', expected: 'link to ".." leaves the folder' },
    { rel: 'l', target: '../x', expected: 'link to "../x" leaves the folder' },
    { rel: 'a/l', target: '../../x', expected: 'link to "../../x" leaves the folder' },
    { rel: 'l', target: 'a/../../x', expected: 'link to "a/../../x" leaves the folder' },
    { rel: 'a/b/l', target: '../../../x', expected: 'link to "../../../x" leaves the folder' },
    { rel: 'l', target: 'x/../..', expected: 'link to "x/../.." leaves the folder' },
  ])('$rel → $target: $expected', ({ rel, target, expected }) => {
    expect(judgeLink(rel, target)).toBe(expected);
  });
});

describe('walkFolder: refused file types', () => {
  it('refuses a FIFO without opening it', async () => {
    const root = tempRoot();
    tree(root, { 'ok.txt': 'ok', sub: null });
    execFileSync('mkfifo', [join(root, 'sub', 'pipe')]);
    const err = await thrownAsync(walkFolder(root)); // opening a FIFO for reading would block here
    expect(err.code).toBe('STAGE_FAILED');
    expect(err.phase).toBe('workspace_stage');
    expect(err.message).toContain('"sub/pipe"');
    expect(err.message).toContain('a FIFO');
    expect(err.details).toMatchObject({ path: 'sub/pipe', kind: 'a FIFO' });
  });

  it('refuses a unix socket', async () => {
    const root = tempRoot();
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(join(root, 'app.sock'), resolve));
    expect(lstatSync(join(root, 'app.sock')).isSocket()).toBe(true);
    const err = await thrownAsync(walkFolder(root));
    expect(err.code).toBe('STAGE_FAILED');
    expect(err.phase).toBe('workspace_stage');
    expect(err.message).toContain('"app.sock"');
    expect(err.message).toContain('a socket');
    expect(err.details).toMatchObject({ path: 'app.sock', kind: 'a socket' });
  });

  it('an ignored folder holding a FIFO is never descended into', async () => {
    const root = tempRoot();
    tree(root, { '.git/HEAD': 'ref', 'x.txt': 'x' });
    execFileSync('mkfifo', [join(root, '.git', 'pipe')]);
    const walk = await walkFolder(root);
    expect(rels(walk)).toEqual(['x.txt']);
    expect(walk.ignored).toBe(1);
  });
});

describe('walkFolder: budgets', () => {
  const limits = (over: Partial<StageLimits>): StageLimits => ({ ...DEFAULT_STAGE_LIMITS, ...over });

  it('fails on a 5 GiB sparse file from its lstat size, before reading it', async () => {
    const root = tempRoot();
    tree(root, { 'small.txt': 'x' });
    writeFileSync(join(root, 'huge.bin'), '');
    truncateSync(join(root, 'huge.bin'), 5 * 1024 ** 3);
    const started = Date.now();
    const err = await thrownAsync(walkFolder(root));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.code).toBe('STAGE_LIMIT_EXCEEDED');
    expect(err.phase).toBe('workspace_stage');
    expect(err.message).toContain(`more than ${DEFAULT_STAGE_LIMITS.maxBytes} bytes`);
    expect(err.message).toContain('"huge.bin"');
    expect(err.details).toMatchObject({ path: 'huge.bin', value: DEFAULT_STAGE_LIMITS.maxBytes });
  });

  it.each<{ name: string; spec: Record<string, string | null>; limit: StageLimits; error: RegExp | null }>([
    {
      name: 'bytes exactly at the limit pass',
      spec: { 'a.txt': '12345', 'b/c.txt': '67890' },
      limit: limits({ maxBytes: 10 }),
      error: null,
    },
    {
      name: 'one byte over fails',
      spec: { 'a.txt': '12345', 'b/c.txt': '678901' },
      limit: limits({ maxBytes: 10 }),
      error: /more than 10 bytes \(limit 10\) at "b\/c.txt"/,
    },
    {
      name: 'entries exactly at the limit pass (3 files + 1 folder)',
      spec: { 'a.txt': '', 'b.txt': '', 'c/d.txt': '' },
      limit: limits({ maxFiles: 4 }),
      error: null,
    },
    {
      name: 'one entry over fails',
      spec: { 'a.txt': '', 'b.txt': '', 'c/d.txt': '', 'c/e.txt': '' },
      limit: limits({ maxFiles: 4 }),
      error: /more than 4 files, folders and links \(limit 4\) at "c\/e.txt"/,
    },
    {
      name: 'folders count as entries (at the limit)',
      spec: { 'a.txt': '', d1: null, d2: null, 'd3/d4': null },
      limit: limits({ maxFiles: 5 }),
      error: null,
    },
    {
      name: 'folders count as entries (one over)',
      spec: { 'a.txt': '', d1: null, d2: null, 'd3/d4': null },
      limit: limits({ maxFiles: 4 }),
      error: /more than 4 files, folders and links \(limit 4\) at "d3\/d4"/,
    },
    {
      name: 'ignored files do not count',
      spec: { 'a.txt': '', 'x.pyc': '', 'y.pyc': '', '__pycache__/z.pyc': '' },
      limit: limits({ maxFiles: 1 }),
      error: null,
    },
    {
      name: 'ignored bytes do not count',
      spec: { 'a.txt': 'ab', '.venv/lib/big.so': 'x'.repeat(1000) },
      limit: limits({ maxBytes: 2 }),
      error: null,
    },
    {
      name: 'depth: root + one folder level within a limit of 2',
      spec: { 'a/x.txt': '' },
      limit: limits({ maxDepth: 2 }),
      error: null,
    },
    {
      name: 'depth: a second folder level exceeds a limit of 2',
      spec: { 'a/b': null },
      limit: limits({ maxDepth: 2 }),
      error: /more than 2 folder levels \(limit 2\) at "a\/b"/,
    },
    {
      name: 'depth: files at the root only with a limit of 1',
      spec: { 'x.txt': '' },
      limit: limits({ maxDepth: 1 }),
      error: null,
    },
    {
      name: 'depth: any folder exceeds a limit of 1',
      spec: { d: null },
      limit: limits({ maxDepth: 1 }),
      error: /more than 1 folder levels \(limit 1\) at "d"/,
    },
    {
      name: 'depth: ignored deep folders do not count',
      spec: { 'node_modules/a/b/c/d': null, 'package-lock.json': '{}' },
      limit: limits({ maxDepth: 1 }),
      error: null,
    },
  ])('$name', async ({ spec, limit, error }) => {
    const root = tempRoot();
    tree(root, spec);
    if (error === null) {
      await expect(walkFolder(root, limit)).resolves.toBeDefined();
    } else {
      const err = await thrownAsync(walkFolder(root, limit));
      expect(err.code).toBe('STAGE_LIMIT_EXCEEDED');
      expect(err.phase).toBe('workspace_stage');
      expect(err.message).toMatch(error);
    }
  });

  it('counts files and bytes that stayed within budget', async () => {
    const root = tempRoot();
    tree(root, { 'a.txt': '12345', 'b/c.txt': '67890' });
    const walk = await walkFolder(root, limits({ maxBytes: 10, maxFiles: 3 })); // 2 files + folder b
    expect({ files: walk.files, bytes: walk.bytes }).toEqual({ files: 2, bytes: 10 });
  });
});

describe('walkFolder: ignore rules', () => {
  it('counts ignored entries once and never descends into ignored folders', async () => {
    const root = tempRoot();
    tree(root, {
      '.git/objects/aa/bb': 'obj',
      '.git/HEAD': 'ref',
      '.venv/bin/python': '',
      'pkg/__pycache__/m.cpython-312.pyc': '',
      'pkg/m.py': 'm',
      'pkg/stale.pyc': '',
      '.DS_Store': '',
      'main.py': 'x',
    });
    const walk = await walkFolder(root);
    expect(rels(walk)).toEqual(['main.py', 'pkg', 'pkg/m.py']);
    expect(walk.ignored).toBe(5); // .DS_Store, .git, .venv, pkg/__pycache__, pkg/stale.pyc
    expect(walk.files).toBe(2);
  });

  it('ignores the root node_modules only when a root lockfile is present', async () => {
    const withLock = tempRoot();
    tree(withLock, {
      'package.json': '{}',
      'package-lock.json': '{}',
      'node_modules/x/index.js': '',
      'lib/node_modules/y.js': '',
    });
    expect(rels(await walkFolder(withLock))).toEqual([
      'lib',
      'lib/node_modules',
      'lib/node_modules/y.js',
      'package-lock.json',
      'package.json',
    ]);
    const withoutLock = tempRoot();
    tree(withoutLock, { 'package.json': '{}', 'node_modules/x/index.js': '' });
    expect(rels(await walkFolder(withoutLock))).toEqual([
      'node_modules',
      'node_modules/x',
      'node_modules/x/index.js',
      'package.json',
    ]);
  });

  it('honours a .mcpboxignore in the folder', async () => {
    const root = tempRoot();
    tree(root, {
      '.mcpboxignore': '# local only\nsecrets.json\n/data/\nlogs/\n*.log\n!keep.log\n\n**/tmp-*\n',
      'secrets.json': '{}',
      'sub/secrets.json': '{}',
      'data/big.csv': 'x',
      'sub/data/small.csv': 'y',
      'logs/a.txt': 'z',
      'app.log': '',
      'keep.log': 'k',
      'sub/deep/tmp-1': '',
      'server.py': 'print()',
    });
    const walk = await walkFolder(root);
    expect(rels(walk)).toEqual([
      '.mcpboxignore',
      'keep.log',
      'server.py',
      'sub',
      'sub/data',
      'sub/data/small.csv',
      'sub/deep',
    ]);
    expect(walk.ignored).toBe(6); // app.log, data, logs, secrets.json, sub/deep/tmp-1, sub/secrets.json
  });

  it('can re-include a default ignore through .mcpboxignore', async () => {
    const root = tempRoot();
    tree(root, { '.mcpboxignore': '!.cache/\n', '.cache/model.bin': 'm', '.git/HEAD': 'h' });
    expect(rels(await walkFolder(root))).toEqual(['.cache', '.cache/model.bin', '.mcpboxignore']);
  });

  it('does not read a .mcpboxignore that is a symlink', async () => {
    const root = tempRoot();
    tree(root, { 'rules.txt': 'secret.txt\n', 'secret.txt': 's' });
    symlinkSync('rules.txt', join(root, '.mcpboxignore'));
    expect(rels(await walkFolder(root))).toEqual(['.mcpboxignore', 'rules.txt', 'secret.txt']);
  });
});
