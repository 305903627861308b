/** Builds host folders for staging tests in a fresh temp dir (removed by the returned cleanup). */
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface TempFolder {
  path: string;
  write(rel: string, content: string | Buffer, mode?: number): string;
  link(rel: string, target: string): void;
  mkdir(rel: string): void;
  cleanup(): void;
}

export function tempFolder(prefix = 'mcp-box-test-'): TempFolder {
  const base = mkdtempSync(join(tmpdir(), prefix));
  const path = join(base, 'project');
  mkdirSync(path);
  return {
    path,
    write(rel, content, mode) {
      const full = join(path, rel);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
      if (mode !== undefined) chmodSync(full, mode);
      return full;
    },
    link(rel, target) {
      const full = join(path, rel);
      mkdirSync(dirname(full), { recursive: true });
      symlinkSync(target, full);
    },
    mkdir(rel) {
      mkdirSync(join(path, rel), { recursive: true });
    },
    cleanup() {
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Copies a fixture folder (test/fixtures/servers/<name>) into a fresh temp folder. */
export function copyFixture(name: string): TempFolder {
  const f = tempFolder(`mcp-box-${name}-`);
  cpSync(new URL(`../fixtures/servers/${name}/`, import.meta.url), f.path, {
    recursive: true,
    filter: (src) => !src.includes('node_modules'),
  });
  return f;
}
