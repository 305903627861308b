import { mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { walkFolder } from '../workspace/walk-folder.js';
import { hostFolderView } from './host-view.js';

let base: string;
beforeEach(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-host-view-')));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('hostFolderView', () => {
  it('reads a manifest the walk saw and hashes it', async () => {
    const proj = join(base, 'proj');
    mkdirSync(join(proj, 'sub'), { recursive: true });
    writeFileSync(join(proj, 'sub', 'package.json'), '{"name":"x"}');
    const view = hostFolderView(await walkFolder(proj));
    expect(view.read('sub/package.json')).toBe('{"name":"x"}');
    expect(view.readHashes.get('sub/package.json')).toMatch(/^[0-9a-f]{64}$/);
    expect(view.read('missing.json')).toBeNull();
  });

  it.runIf(process.platform === 'linux')(
    'refuses a manifest whose parent folder was moved out and replaced by a symlink after the walk',
    async () => {
      const proj = join(base, 'proj');
      const outside = join(base, 'outside');
      mkdirSync(join(proj, 'sub'), { recursive: true });
      writeFileSync(join(proj, 'sub', 'package.json'), '{"name":"x"}');
      const view = hostFolderView(await walkFolder(proj));
      // The same inode, now outside the folder, reached through a link in place of its parent.
      renameSync(join(proj, 'sub'), outside);
      symlinkSync(outside, join(proj, 'sub'));
      expect(() => view.read('sub/package.json')).toThrow(/opened outside the folder/);
      expect(view.readHashes.size).toBe(0);
    },
  );

  it('refuses a manifest replaced by another file after the walk', async () => {
    const proj = join(base, 'proj');
    mkdirSync(proj);
    writeFileSync(join(proj, 'requirements.txt'), 'mcp\n');
    const view = hostFolderView(await walkFolder(proj));
    // Written beside it first, so it is a new inode, then renamed over it.
    writeFileSync(join(proj, 'requirements.new'), '--index-url http://evil/\n');
    renameSync(join(proj, 'requirements.new'), join(proj, 'requirements.txt'));
    expect(() => view.read('requirements.txt')).toThrow(/changed during staging/);
  });
});
