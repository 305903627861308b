/**
 * Walks a host folder without following symlinks and decides, entry by entry, what is staged:
 * regular files and folders; relative links that stay inside (absolute and escaping links are
 * dropped with a warning); devices, FIFOs and sockets are refused without ever being opened.
 * Budgets on bytes, file count and depth are checked on the sizes `lstat` reports, before any
 * content is read (a 20 GB sparse file fails here), and enforced again on the bytes actually read
 * when packing.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { join, posix, sep } from 'node:path';
import { BoxError } from '../errors/box-error.js';
import { IgnoreRules } from './ignore-rules.js';

export interface StageLimits {
  maxBytes: number;
  maxFiles: number;
  maxDepth: number;
}

export const DEFAULT_STAGE_LIMITS: StageLimits = { maxBytes: 256 * 1024 * 1024, maxFiles: 20_000, maxDepth: 32 };

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

export function walkFolder(root: string, limits: StageLimits = DEFAULT_STAGE_LIMITS): WalkResult {
  const rootNames = new Set(readdirSync(root));
  const ignoreFile = rootNames.has('.mcpboxignore') ? readSmallFile(join(root, '.mcpboxignore')) : null;
  const rules = IgnoreRules.forFolder(rootNames, ignoreFile);
  const result: WalkResult = { root, entries: [], dropped: [], ignored: 0, bytes: 0, files: 0 };
  const refuse = (rel: string, what: string): never => {
    throw new BoxError('STAGE_FAILED', 'workspace_stage', `Cannot stage ${JSON.stringify(rel)}: it is ${what}; remove it or list it in .mcpboxignore`, {
      details: { path: rel, kind: what },
    });
  };
  const overBudget = (what: string, limit: number, rel: string): never => {
    throw new BoxError('STAGE_LIMIT_EXCEEDED', 'workspace_stage', `The folder exceeds the staging budget: ${what} (limit ${limit}) at ${JSON.stringify(rel)}; raise the limit or ignore large files in .mcpboxignore`, {
      details: { limit: what, value: limit, path: rel },
    });
  };

  const visit = (relDir: string, depth: number): void => {
    if (depth > limits.maxDepth) overBudget(`more than ${limits.maxDepth} folder levels`, limits.maxDepth, relDir);
    const names = readdirSync(relDir === '' ? root : join(root, relDir)).sort();
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      let st: Stats;
      try {
        st = lstatSync(join(root, rel));
      } catch {
        continue; // vanished during the walk
      }
      if (rules.ignores(rel, st.isDirectory())) {
        result.ignored++;
        continue;
      }
      const base = { rel, size: 0, mode: st.mode & 0o7777, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs };
      if (st.isDirectory()) {
        result.entries.push({ ...base, type: 'dir' });
        visit(rel, depth + 1);
      } else if (st.isFile()) {
        result.files++;
        result.bytes += st.size;
        if (result.files > limits.maxFiles) overBudget(`more than ${limits.maxFiles} files`, limits.maxFiles, rel);
        if (result.bytes > limits.maxBytes) overBudget(`more than ${limits.maxBytes} bytes`, limits.maxBytes, rel);
        result.entries.push({ ...base, type: 'file', size: st.size });
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(join(root, rel));
        const verdict = judgeLink(rel, target) ?? judgeResolvedLink(root, rel);
        if (verdict === null) result.entries.push({ ...base, type: 'symlink', linkTarget: target });
        else result.dropped.push({ rel, reason: verdict });
      } else if (st.isFIFO()) refuse(rel, 'a FIFO');
      else if (st.isSocket()) refuse(rel, 'a socket');
      else if (st.isCharacterDevice() || st.isBlockDevice()) refuse(rel, 'a device');
      else refuse(rel, 'an unsupported file type');
    }
  };
  visit('', 1);
  return result;
}

/** null when the link may be kept; otherwise why it is dropped. */
export function judgeLink(rel: string, target: string): string | null {
  if (target === '') return 'empty link';
  if (target.startsWith('/')) return `absolute link to ${JSON.stringify(target)}`;
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../') || resolved.startsWith('/')) return `link to ${JSON.stringify(target)} leaves the folder`;
  return null;
}

/**
 * The text check cannot see chains (`a -> .`, `e -> a/..` climbs out through `a`): ask the kernel
 * where the link really leads. A dangling link is kept (it leads nowhere on the host).
 */
function judgeResolvedLink(root: string, rel: string): string | null {
  let real: string;
  try {
    real = realpathSync.native(join(root, rel));
  } catch {
    return null;
  }
  const realRoot = realpathSync.native(root);
  return real === realRoot || real.startsWith(realRoot + sep) ? null : 'link resolves outside the folder (through other links)';
}

function readSmallFile(path: string): string | null {
  try {
    const st = lstatSync(path);
    return st.isFile() && st.size <= 64 * 1024 ? readFileSync(path, 'utf8') : null;
  } catch {
    return null;
  }
}
