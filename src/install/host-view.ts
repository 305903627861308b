/**
 * Reads the few files install planning needs (manifests, lockfiles, requirement files) from the
 * host folder, the same careful way staging does (no following links, size-capped), and remembers
 * the hash of what it read: after staging, the staged copy must have the same hash, or the folder
 * changed in between and the stage is refused.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { BoxError } from '../errors/box-error.js';
import { opensAtSync } from '../workspace/fd-path.js';
import type { WalkResult } from '../workspace/walk-folder.js';
import type { FolderView } from './detect-install.js';

const MAX_MANIFEST_BYTES = 10 * 1024 * 1024;

export interface HostFolderView extends FolderView {
  /** sha256 of every file read through this view. */
  readonly readHashes: Map<string, string>;
}

export function hostFolderView(walk: WalkResult): HostFolderView {
  const files = new Map(walk.entries.filter((e) => e.type === 'file').map((e) => [e.rel, e]));
  const rootNames = new Set(walk.entries.filter((e) => !e.rel.includes('/') && e.type !== 'dir').map((e) => e.rel));
  const readHashes = new Map<string, string>();
  const contents = new Map<string, string>();
  let realRoot: string | undefined;
  return {
    rootNames,
    readHashes,
    read(rel: string): string | null {
      const cached = contents.get(rel);
      if (cached !== undefined) return cached;
      const entry = files.get(rel);
      if (entry === undefined) return null;
      if (entry.size > MAX_MANIFEST_BYTES) {
        throw new BoxError(
          'INSTALL_FAILED',
          'dep_install',
          `${rel} is larger than ${MAX_MANIFEST_BYTES} bytes; not a manifest mcp-box will read`,
        );
      }
      realRoot ??= realpathSync.native(walk.root);
      const fd = openSync(join(walk.root, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        // A folder on the way swapped for a symlink after the walk: O_NOFOLLOW guards only the last component.
        if (!opensAtSync(fd, join(realRoot, rel))) {
          throw new BoxError(
            'STAGE_FAILED',
            'workspace_stage',
            `${rel} changed during staging ` +
              '(a folder on its path was replaced: it opened outside the folder); try again',
          );
        }
        const st = fstatSync(fd);
        if (!st.isFile() || st.ino !== entry.ino || st.dev !== entry.dev) {
          throw new BoxError('STAGE_FAILED', 'workspace_stage', `${rel} changed during staging; try again`);
        }
        const buffer = Buffer.alloc(entry.size);
        let offset = 0;
        while (offset < entry.size) {
          const n = readSync(fd, buffer, offset, entry.size - offset, offset);
          if (n === 0) break;
          offset += n;
        }
        const content = buffer.subarray(0, offset);
        readHashes.set(rel, createHash('sha256').update(content).digest('hex'));
        const text = content.toString('utf8');
        contents.set(rel, text);
        return text;
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** Every file the planner read must have been staged with the same content. */
export function assertSameAsStaged(view: HostFolderView, staged: Map<string, string>): void {
  for (const [rel, hash] of view.readHashes) {
    if (staged.get(rel) !== hash) {
      throw new BoxError('STAGE_FAILED', 'workspace_stage', `${rel} changed while it was being staged; try again`, {
        details: { path: rel },
      });
    }
  }
}
