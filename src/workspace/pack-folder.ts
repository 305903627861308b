/**
 * Turns a walked folder into an uncompressed tar stream for extraction inside the sandbox.
 * Headers are normalised (owner = the server's uid/gid, no setuid/setgid/sticky, modes 0755/0644).
 * Every file is opened with O_NOFOLLOW|O_NONBLOCK and must still be the regular file the walk saw
 * (same device and inode), and exactly the size in its header is read: a file swapped for a link,
 * a FIFO or another file fails the stage, and one that grows brings no extra bytes.
 *
 * `O_NOFOLLOW` covers only the last component: a parent folder swapped for a link to somewhere
 * else would be followed (and the walk's own lstat may have gone through it too, so the inode check
 * alone cannot tell). So after the open, the kernel's name for the descriptor
 * (`/proc/self/fd/<fd>`, Linux) must be the folder's real path plus the entry's path, or the file
 * is refused like any other file that changed during staging.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { pack, type Pack } from 'tar-stream';
import { BoxError } from '../errors/box-error.js';
import type { WalkResult } from './walk-folder.js';
import { opensAt } from './fd-path.js';

const READ_CHUNK = 64 * 1024;

export interface PackOptions {
  uid: number;
  gid: number;
  /** Extra files added at the end (e.g. the CA bundle), never read from the folder. */
  extra?: { name: string; content: Buffer }[];
  signal?: AbortSignal;
}

export interface PackReport {
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  /** sha256 of every staged file's content, by relative path. */
  hashes: Map<string, string>;
}

export function packFolder(walk: WalkResult, opts: PackOptions): { stream: Pack; done: Promise<PackReport> } {
  const stream = pack();
  const done = writeEntries(stream, walk, opts).then(
    (report) => {
      stream.finalize();
      return report;
    },
    (err: unknown) => {
      stream.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    },
  );
  done.catch(() => undefined); // observed by the caller; never an unhandled rejection
  return { stream, done };
}

async function writeEntries(stream: Pack, walk: WalkResult, opts: PackOptions): Promise<PackReport> {
  const report: PackReport = { files: 0, dirs: 0, links: 0, bytes: 0, hashes: new Map() };
  const common = { uid: opts.uid, gid: opts.gid, uname: '', gname: '' };
  const realRoot = walk.entries.some((e) => e.type === 'file') ? await realpath(walk.root) : walk.root;
  for (const entry of walk.entries) {
    opts.signal?.throwIfAborted();
    const mtime = new Date(Math.floor(entry.mtimeMs));
    if (entry.type === 'dir') {
      await addEntry(stream, { ...common, name: `${entry.rel}/`, type: 'directory', mode: 0o755, mtime });
      report.dirs++;
    } else if (entry.type === 'symlink') {
      await addEntry(stream, {
        ...common,
        name: entry.rel,
        type: 'symlink',
        linkname: entry.linkTarget ?? '',
        mode: 0o777,
        mtime,
      });
      report.links++;
    } else {
      const mode = (entry.mode & 0o111) !== 0 ? 0o755 : 0o644;
      const hash = await addFile(
        stream,
        join(walk.root, entry.rel),
        join(realRoot, entry.rel),
        entry.rel,
        entry.size,
        entry.dev,
        entry.ino,
        { ...common, mode, mtime },
      );
      report.hashes.set(entry.rel, hash);
      report.files++;
      report.bytes += entry.size;
    }
  }
  for (const extra of opts.extra ?? []) {
    await addEntry(
      stream,
      { ...common, name: extra.name, type: 'file', mode: 0o644, mtime: new Date() },
      extra.content,
    );
  }
  return report;
}

function addEntry(stream: Pack, header: Parameters<Pack['entry']>[0], content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (content === undefined) stream.entry(header, cb);
    else stream.entry(header, content, cb);
  });
}

async function addFile(
  stream: Pack,
  path: string,
  expectedReal: string,
  rel: string,
  size: number,
  dev: number,
  ino: number,
  header: { uid: number; gid: number; uname: string; gname: string; mode: number; mtime: Date },
): Promise<string> {
  const changed = (how: string): BoxError =>
    new BoxError(
      'STAGE_FAILED',
      'workspace_stage',
      `Cannot stage ${JSON.stringify(rel)}: it changed during staging (${how}); try again`,
      {
        details: { path: rel, change: how },
      },
    );
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw changed(code === 'ELOOP' ? 'it became a symbolic link' : `it could not be opened: ${code ?? String(err)}`);
  }
  try {
    if (!(await opensAt(handle.fd, expectedReal)))
      throw changed('a folder on its path was replaced: it opened outside the folder');
    const st = await handle.stat();
    if (!st.isFile()) throw changed('it is no longer a regular file');
    if (st.dev !== dev || st.ino !== ino) throw changed('it was replaced by another file');
    const hash = createHash('sha256');
    let finishEntry!: (err?: Error | null) => void;
    const entryDone = new Promise<void>((resolve, reject) => (finishEntry = (err) => (err ? reject(err) : resolve())));
    entryDone.catch(() => undefined); // a destroyed entry rejects it; the BoxError below is what counts
    const sink = stream.entry({ ...header, name: rel, type: 'file', size }, finishEntry);
    let remaining = size;
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(size, 1)));
    while (remaining > 0) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, remaining), size - remaining);
      if (bytesRead === 0) {
        sink.destroy();
        throw changed('it shrank');
      }
      const chunk = Buffer.from(buffer.subarray(0, bytesRead));
      hash.update(chunk);
      remaining -= bytesRead;
      if (!sink.write(chunk)) await once(sink, 'drain');
    }
    sink.end(() => undefined);
    await entryDone;
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}
