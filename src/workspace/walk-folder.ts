/**
 * Walks a host folder without following symlinks and decides, entry by entry, what is staged:
 * regular files and folders; relative links that stay inside (absolute and escaping links are
 * dropped with a warning); devices, FIFOs and sockets are refused without ever being opened.
 * Budgets on bytes, entry count (files, folders and links) and depth are checked on what `lstat`
 * reports, before any content is read (a 20 GB sparse file fails here), and enforced again on the
 * bytes actually read when packing. The walk is synchronous calls in slices of ~10 ms with a yield
 * to the event loop between them: a 20,000-entry folder never holds the loop for its whole walk.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  type Stats,
} from 'node:fs';
import { join, posix, sep } from 'node:path';
import { DEFAULT_STAGE_LIMITS, type StageLimits } from '../defaults.js';
import { BoxError } from '../errors/box-error.js';
import { IgnoreRules } from './ignore-rules.js';

export type { StageLimits } from '../defaults.js';

export { DEFAULT_STAGE_LIMITS };

export interface WalkEntry {
  /** `/`-separated path relative to the root. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
  mode: number;
  dev: number;
  ino: number;
  mtimeMs: number;
  linkTarget?: string;
}

export interface DroppedEntry {
  rel: string;
  reason: string;
}

export interface WalkResult {
  root: string;
  entries: WalkEntry[];
  dropped: DroppedEntry[];
  ignored: number;
  bytes: number;
  files: number;
}

/** The longest the walk holds the event loop before it yields (the sync calls are batched). */
const WALK_SLICE_MS = 10;

export async function walkFolder(root: string, limits: StageLimits = DEFAULT_STAGE_LIMITS): Promise<WalkResult> {
  const rootNames = new Set(readdirSync(root));
  const ignoreFile = rootNames.has('.mcpboxignore') ? readIgnoreFile(join(root, '.mcpboxignore')) : null;
  const rules = IgnoreRules.forFolder(rootNames, ignoreFile);
  const result: WalkResult = { root, entries: [], dropped: [], ignored: 0, bytes: 0, files: 0 };
  const refuse = (rel: string, what: string): never => {
    throw new BoxError(
      'STAGE_FAILED',
      'workspace_stage',
      `Cannot stage ${JSON.stringify(rel)}: it is ${what}; remove it or list it in .mcpboxignore`,
      {
        details: { path: rel, kind: what },
      },
    );
  };
  const overBudget = (what: string, limit: number, rel: string): never => {
    throw new BoxError(
      'STAGE_LIMIT_EXCEEDED',
      'workspace_stage',
      `The folder exceeds the staging budget: ${what} (limit ${limit}) at ${JSON.stringify(rel)}; ` +
        'raise the limit or ignore large files in .mcpboxignore',
      {
        details: { limit: what, value: limit, path: rel },
      },
    );
  };
  let sliceStarted = performance.now();
  const maybeYield = async (): Promise<void> => {
    if (performance.now() - sliceStarted < WALK_SLICE_MS) return;
    await yieldToLoop();
    sliceStarted = performance.now();
  };
  let counted = 0;
  // Every entry the walk keeps or drops counts: files, folders and links alike.
  const count = (rel: string): void => {
    if (++counted > limits.maxFiles)
      overBudget(`more than ${limits.maxFiles} files, folders and links`, limits.maxFiles, rel);
  };

  const realRoot = realpathSync.native(root);
  const visit = async (relDir: string, depth: number): Promise<void> => {
    if (depth > limits.maxDepth) overBudget(`more than ${limits.maxDepth} folder levels`, limits.maxDepth, relDir);
    const dir = openFolder(root, realRoot, relDir);
    try {
      await visitOpen(relDir, depth, dir.path);
    } finally {
      dir.close();
    }
  };
  /** `dirPath` names the opened, verified folder (through its descriptor on Linux). */
  const visitOpen = async (relDir: string, depth: number, dirPath: string): Promise<void> => {
    const names = readdirSync(dirPath).sort();
    for (const name of names) {
      await maybeYield();
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const path = join(dirPath, name);
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch {
        continue; // vanished during the walk
      }
      if (rules.ignores(rel, st.isDirectory())) {
        result.ignored++;
        continue;
      }
      const base = { rel, size: 0, mode: st.mode & 0o7777, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs };
      if (st.isDirectory()) {
        count(rel);
        result.entries.push({ ...base, type: 'dir' });
        await visit(rel, depth + 1);
      } else if (st.isFile()) {
        count(rel);
        result.files++;
        result.bytes += st.size;
        if (result.bytes > limits.maxBytes) overBudget(`more than ${limits.maxBytes} bytes`, limits.maxBytes, rel);
        result.entries.push({ ...base, type: 'file', size: st.size });
      } else if (st.isSymbolicLink()) {
        count(rel);
        let target: string;
        try {
          target = readlinkSync(path);
        } catch {
          continue; // vanished (or replaced) since its lstat
        }
        const verdict = judgeLink(rel, target) ?? judgeResolvedLink(realRoot, path);
        if (verdict === null) result.entries.push({ ...base, type: 'symlink', linkTarget: target });
        else result.dropped.push({ rel, reason: verdict });
      } else if (st.isFIFO()) refuse(rel, 'a FIFO');
      else if (st.isSocket()) refuse(rel, 'a socket');
      else if (st.isCharacterDevice() || st.isBlockDevice()) refuse(rel, 'a device');
      else refuse(rel, 'an unsupported file type');
    }
  };
  await visit('', 1);
  return result;
}

/** null when the link may be kept; otherwise why it is dropped. */
export function judgeLink(rel: string, target: string): string | null {
  if (target === '') return 'empty link';
  if (target.startsWith('/')) return `absolute link to ${JSON.stringify(target)}`;
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../') || resolved.startsWith('/'))
    return `link to ${JSON.stringify(target)} leaves the folder`;
  return null;
}

/**
 * The text check cannot see chains (`a -> .`, `e -> a/..` climbs out through `a`): ask the kernel
 * where the link really leads. A dangling link is kept (it leads nowhere on the host).
 */
function judgeResolvedLink(realRoot: string, path: string): string | null {
  let real: string;
  try {
    real = realpathSync.native(path);
  } catch {
    return null;
  }
  return real === realRoot || real.startsWith(realRoot + sep)
    ? null
    : 'link resolves outside the folder (through other links)';
}

/**
 * Opens a folder of the walk so that what is listed is the folder itself, even if it or a parent
 * is swapped for a link meanwhile: on Linux it is opened no-follow, its descriptor's name must be
 * the expected real path, and it is then read through `/proc/self/fd/<fd>` (the descriptor, never
 * the name again). Elsewhere the path is used as it is.
 */
function openFolder(root: string, realRoot: string, relDir: string): { path: string; close: () => void } {
  const path = relDir === '' ? root : join(root, relDir);
  if (process.platform !== 'linux') return { path, close: () => undefined };
  const changed = (how: string): BoxError =>
    new BoxError(
      'STAGE_FAILED',
      'workspace_stage',
      `Cannot stage ${JSON.stringify(relDir || '.')}: it changed during staging (${how}); try again`,
      {
        details: { path: relDir || '.', change: how },
      },
    );
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw changed(
      code === 'ELOOP' || code === 'ENOTDIR'
        ? 'it is no longer a folder'
        : `it could not be opened: ${code ?? String(err)}`,
    );
  }
  const fdPath = `/proc/self/fd/${fd}`;
  let real: string | null = null;
  try {
    real = readlinkSync(fdPath);
  } catch {
    // checked below
  }
  if (real !== (relDir === '' ? realRoot : join(realRoot, relDir))) {
    closeSync(fd);
    throw changed('a folder on its path was replaced: it opened outside the folder');
  }
  return { path: fdPath, close: () => closeSync(fd) };
}

const MAX_IGNORE_FILE_BYTES = 64 * 1024;

/**
 * The folder's `.mcpboxignore`, or null when it is not a small regular file. Opened no-follow and
 * non-blocking, then checked on the descriptor: a link or a FIFO swapped in after the listing is
 * never followed or waited on. A FIFO is then refused by the walk like any other.
 */
export function readIgnoreFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null; // a link (ELOOP), vanished, unreadable
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_IGNORE_FILE_BYTES) return null;
    const buffer = Buffer.alloc(st.size);
    let offset = 0;
    while (offset < st.size) {
      const n = readSync(fd, buffer, offset, st.size - offset, offset);
      if (n === 0) break;
      offset += n;
    }
    return buffer.subarray(0, offset).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
