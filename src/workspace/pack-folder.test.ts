import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { extract, type Header, type Pack } from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { packFolder, type PackOptions, type PackReport } from './pack-folder.js';
import { walkFolder } from './walk-folder.js';

const folders: string[] = [];

afterEach(() => {
  for (const f of folders.splice(0)) rmSync(f, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-pack-')));
  folders.push(root);
  return root;
}

function write(root: string, rel: string, content: string | Buffer, mode?: number): void {
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  if (mode !== undefined) chmodSync(path, mode);
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Every byte the stream produced until it ended or failed. */
function collect(stream: Pack): Promise<{ bytes: Buffer; error: Error | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: Error | null = null;
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('error', (err: Error) => (error = err));
    stream.on('end', () => resolve({ bytes: Buffer.concat(chunks), error }));
    stream.on('close', () => resolve({ bytes: Buffer.concat(chunks), error }));
  });
}

interface TarEntry {
  header: Header;
  data: Buffer;
}

async function untar(bytes: Buffer): Promise<TarEntry[]> {
  const ex = extract();
  const entries: TarEntry[] = [];
  const reading = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(bytes);
  await reading;
  return entries;
}

async function packOk(
  root: string,
  opts: PackOptions,
): Promise<{ bytes: Buffer; entries: TarEntry[]; report: PackReport }> {
  const { stream, done } = packFolder(await walkFolder(root), opts);
  const [collected, report] = await Promise.all([collect(stream), done]);
  expect(collected.error).toBeNull();
  return { bytes: collected.bytes, entries: await untar(collected.bytes), report };
}

const stripSlash = (name: string): string => name.replace(/\/$/, '');

describe('packFolder: headers and content', () => {
  it('normalises owners and modes, keeps links, appends extras, and packs content byte-exact', async () => {
    const root = tempRoot();
    const binary = randomBytes(200 * 1024 + 17); // more than a few read chunks
    write(root, 'bin/blob.dat', binary, 0o600);
    write(root, 'bin/tool', '#!/bin/sh\necho hi\n', 0o700);
    write(root, 'empty.txt', '', 0o644);
    write(root, 'group-exec', 'x', 0o610);
    write(root, 'readme.md', '# hi\n', 0o664);
    write(root, 'setuid-tool', 'suid', 0o4755);
    write(root, 'setgid-file', 'sgid', 0o2644);
    mkdirSync(join(root, 'private'), { mode: 0o700 });
    chmodSync(join(root, 'private'), 0o700);
    symlinkSync('readme.md', join(root, 'link'));
    symlinkSync('../bin/tool', join(root, 'private', 'tool-link'));
    expect(lstatSync(join(root, 'setuid-tool')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(root, 'setgid-file')).mode & 0o7777).toBe(0o2644);
    const extraContent = Buffer.from('-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n');

    const { entries, report } = await packOk(root, {
      uid: 1234,
      gid: 5678,
      extra: [{ name: '.mcp-box-stage/ca.pem', content: extraContent }],
    });

    expect(entries.map((e) => stripSlash(e.header.name))).toEqual([
      'bin',
      'bin/blob.dat',
      'bin/tool',
      'empty.txt',
      'group-exec',
      'link',
      'private',
      'private/tool-link',
      'readme.md',
      'setgid-file',
      'setuid-tool',
      '.mcp-box-stage/ca.pem',
    ]);
    const byName = new Map(entries.map((e) => [stripSlash(e.header.name), e]));
    for (const e of entries) {
      expect({
        name: e.header.name,
        uid: e.header.uid,
        gid: e.header.gid,
        uname: e.header.uname,
        gname: e.header.gname,
      }).toEqual({
        name: e.header.name,
        uid: 1234,
        gid: 5678,
        uname: '',
        gname: '',
      });
    }
    const expectedModes: Record<string, [Header['type'], number]> = {
      bin: ['directory', 0o755],
      private: ['directory', 0o755],
      'bin/blob.dat': ['file', 0o644],
      'bin/tool': ['file', 0o755],
      'empty.txt': ['file', 0o644],
      'group-exec': ['file', 0o755],
      'readme.md': ['file', 0o644],
      'setuid-tool': ['file', 0o755],
      'setgid-file': ['file', 0o644],
      '.mcp-box-stage/ca.pem': ['file', 0o644],
    };
    for (const [name, [type, mode]] of Object.entries(expectedModes)) {
      expect({ name, type: byName.get(name)?.header.type, mode: byName.get(name)?.header.mode }).toEqual({
        name,
        type,
        mode,
      });
    }
    expect(byName.get('link')?.header).toMatchObject({ type: 'symlink', linkname: 'readme.md' });
    expect(byName.get('private/tool-link')?.header).toMatchObject({ type: 'symlink', linkname: '../bin/tool' });
    expect(byName.get('link')?.data.length).toBe(0);

    expect(byName.get('bin/blob.dat')?.data.equals(binary)).toBe(true);
    expect(byName.get('bin/blob.dat')?.header.size).toBe(binary.length);
    expect(byName.get('bin/tool')?.data.toString()).toBe('#!/bin/sh\necho hi\n');
    expect(byName.get('empty.txt')?.data.length).toBe(0);
    expect(byName.get('.mcp-box-stage/ca.pem')?.data.equals(extraContent)).toBe(true);

    expect(report.files).toBe(7);
    expect(report.dirs).toBe(2);
    expect(report.links).toBe(2);
    expect(report.bytes).toBe(binary.length + 18 + 0 + 1 + 5 + 4 + 4);
    expect(Object.fromEntries(report.hashes)).toEqual({
      'bin/blob.dat': sha256(binary),
      'bin/tool': sha256('#!/bin/sh\necho hi\n'),
      'empty.txt': sha256(''),
      'group-exec': sha256('x'),
      'readme.md': sha256('# hi\n'),
      'setuid-tool': sha256('suid'),
      'setgid-file': sha256('sgid'),
    });
  });

  it('keeps the walked mtime (to the second)', async () => {
    const root = tempRoot();
    write(root, 'a.txt', 'a');
    const walk = await walkFolder(root);
    const { stream, done } = packFolder(walk, { uid: 1, gid: 1 });
    const [collected] = await Promise.all([collect(stream), done]);
    const [entry] = await untar(collected.bytes);
    expect(entry?.header.mtime?.getTime()).toBe(Math.floor((walk.entries[0]?.mtimeMs ?? 0) / 1000) * 1000);
  });

  it('the stream is an uncompressed ustar archive', async () => {
    const root = tempRoot();
    write(root, 'a.txt', 'hello');
    const { bytes } = await packOk(root, { uid: 0, gid: 0 });
    expect(bytes.subarray(0, 2).toString('hex')).not.toBe('1f8b'); // gzip
    expect(bytes.subarray(0, 6).toString('hex')).not.toBe('fd377a585a00'); // xz
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('a.txt');
    expect(bytes.subarray(257, 262).toString('latin1')).toBe('ustar');
    expect(bytes.length % 512).toBe(0);
  });

  it('an empty walk packs only the extras', async () => {
    const root = tempRoot();
    const { entries, report } = await packOk(root, {
      uid: 7,
      gid: 8,
      extra: [{ name: 'x', content: Buffer.from('1') }],
    });
    expect(entries.map((e) => e.header.name)).toEqual(['x']);
    expect(report).toMatchObject({ files: 0, dirs: 0, links: 0, bytes: 0 });
    expect(report.hashes.size).toBe(0);
  });

  it('stops with the signal’s reason when aborted', async () => {
    const root = tempRoot();
    write(root, 'a.txt', 'a');
    const ac = new AbortController();
    const reason = new BoxError('ABORTED', 'workspace_stage', 'stop');
    ac.abort(reason);
    const { stream, done } = packFolder(await walkFolder(root), { uid: 0, gid: 0, signal: ac.signal });
    const collected = collect(stream);
    await expect(done).rejects.toBe(reason);
    expect((await collected).error).toBe(reason);
  });
});

describe('packFolder: a folder that changes during staging', () => {
  /** Walks, applies `change`, packs; the stream must fail with STAGE_FAILED naming the file and `how`. */
  async function expectChangeFails(
    setup: (root: string) => void,
    change: (root: string) => void,
    how: RegExp,
  ): Promise<Buffer> {
    const root = tempRoot();
    setup(root);
    const walk = await walkFolder(root);
    change(root);
    const { stream, done } = packFolder(walk, { uid: 1000, gid: 1000 });
    const collected = collect(stream);
    const err = await done.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BoxError);
    const box = err as BoxError;
    expect(box.code).toBe('STAGE_FAILED');
    expect(box.phase).toBe('workspace_stage');
    expect(box.message).toContain('"b/target.txt"');
    expect(box.message).toMatch(how);
    expect(box.details.path).toBe('b/target.txt');
    const { bytes, error } = await collected;
    expect(error).toBe(err);
    return bytes;
  }

  const setup = (root: string): void => {
    write(root, 'a.txt', 'first file');
    write(root, 'b/target.txt', 'original content of the target');
    write(root, 'c.txt', 'after');
  };

  it.each(['/etc/hostname', '/etc/passwd'])('a file swapped for a symlink to %s', async (target) => {
    const bytes = await expectChangeFails(
      setup,
      (root) => {
        unlinkSync(join(root, 'b/target.txt'));
        symlinkSync(target, join(root, 'b/target.txt'));
      },
      /symbolic link/,
    );
    expect(bytes.includes(readFileSync(target))).toBe(false);
    expect(bytes.includes(Buffer.from('after'))).toBe(false);
  });

  it('a file swapped for another file (a different inode)', async () => {
    const bytes = await expectChangeFails(
      setup,
      (root) => {
        writeFileSync(join(root, 'b/new.txt'), 'REPLACEMENT content, same length!');
        renameSync(join(root, 'b/new.txt'), join(root, 'b/target.txt'));
      },
      /replaced/,
    );
    expect(bytes.includes(Buffer.from('REPLACEMENT'))).toBe(false);
  });

  it('a file swapped for a FIFO (never blocks)', async () => {
    await expectChangeFails(
      setup,
      (root) => {
        unlinkSync(join(root, 'b/target.txt'));
        execFileSync('mkfifo', [join(root, 'b/target.txt')]);
      },
      /no longer a regular file/,
    );
  });

  it('a file that disappeared', async () => {
    await expectChangeFails(setup, (root) => unlinkSync(join(root, 'b/target.txt')), /could not be opened: ENOENT/);
  });

  it('a file that grew is packed at its walked size only', async () => {
    const root = tempRoot();
    setup(root);
    const walk = await walkFolder(root);
    appendFileSync(join(root, 'b/target.txt'), ' + APPENDED LATER');
    const { stream, done } = packFolder(walk, { uid: 1, gid: 1 });
    const [collected, report] = await Promise.all([collect(stream), done]);
    expect(collected.error).toBeNull();
    const entries = await untar(collected.bytes);
    const target = entries.find((e) => e.header.name === 'b/target.txt');
    expect(target?.data.toString()).toBe('original content of the target');
    expect(target?.header.size).toBe('original content of the target'.length);
    expect(collected.bytes.includes(Buffer.from('APPENDED'))).toBe(false);
    expect(report.hashes.get('b/target.txt')).toBe(sha256('original content of the target'));
    expect(report.bytes).toBe('first file'.length + 'original content of the target'.length + 'after'.length);
    expect(entries.find((e) => e.header.name === 'c.txt')?.data.toString()).toBe('after');
  });

  it('a file rewritten in place with the same size is packed as read (same inode)', async () => {
    const root = tempRoot();
    setup(root);
    const walk = await walkFolder(root);
    writeFileSync(join(root, 'b/target.txt'), 'ORIGINAL CONTENT OF THE TARGET');
    const { entries, report } = await (async () => {
      const { stream, done } = packFolder(walk, { uid: 1, gid: 1 });
      const [collected, r] = await Promise.all([collect(stream), done]);
      return { entries: await untar(collected.bytes), report: r };
    })();
    expect(entries.find((e) => e.header.name === 'b/target.txt')?.data.toString()).toBe(
      'ORIGINAL CONTENT OF THE TARGET',
    );
    expect(report.hashes.get('b/target.txt')).toBe(sha256('ORIGINAL CONTENT OF THE TARGET'));
  });
});
