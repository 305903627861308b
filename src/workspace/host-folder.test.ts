import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commonPath, isVenvPython, resolveHostFolder, rewriteForContainer, unwrapVenv } from './host-folder.js';

/** An existing interpreter the fake venv's python links to, like a real venv does. */
const BASE_PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3', '/bin/sh'].find((p) => existsSync(p)) ?? '/bin/sh';

let base: string;
let proj: string;
let venvPython: string;
let alias: string;

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-host-folder-')));
  proj = join(base, 'proj');
  mkdirSync(join(proj, '.venv', 'bin'), { recursive: true });
  mkdirSync(join(proj, 'src', 'pkg'), { recursive: true });
  mkdirSync(join(proj, 'data'), { recursive: true });
  writeFileSync(join(proj, 'server.py'), 'print(1)\n');
  writeFileSync(join(proj, 'src', 'pkg', 'main.py'), 'print(2)\n');
  writeFileSync(join(proj, 'index.js'), 'console.log(1)\n');
  venvPython = join(proj, '.venv', 'bin', 'python');
  symlinkSync(BASE_PYTHON, venvPython);
  symlinkSync('python', join(proj, '.venv', 'bin', 'python3'));
  mkdirSync(join(base, 'other'), { recursive: true });
  writeFileSync(join(base, 'other', 'x.py'), '');
  mkdirSync(join(base, 'proj2'), { recursive: true });
  writeFileSync(join(base, 'proj2', 'y.py'), '');
  alias = join(base, 'alias');
  symlinkSync(proj, alias);
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

describe('resolveHostFolder: explicit box.hostPath', () => {
  it.each([
    { hostPath: 'proj', configDir: '/cfg', expected: '/cfg/proj' },
    { hostPath: './proj/sub/', configDir: '/cfg/dir', expected: '/cfg/dir/proj/sub' },
    { hostPath: '../shared', configDir: '/cfg/dir', expected: '/cfg/shared' },
    { hostPath: '/abs/folder', configDir: '/cfg', expected: '/abs/folder' },
  ])('$hostPath relative to $configDir → $expected', ({ hostPath, configDir, expected }) => {
    // The explicit folder wins even over paths on the command line, and need not exist yet.
    const res = resolveHostFolder({ command: venvPython, args: [join(base, 'other', 'x.py')], hostPath }, configDir);
    expect(res).toEqual({ hostPath: expected, inferred: false });
  });

  it('takes an empty hostPath as "no folder" and infers nothing (a server added through the API)', () => {
    const res = resolveHostFolder({ command: 'node', args: [join(proj, 'index.js')], hostPath: '' }, '/cfg');
    expect(res).toEqual({ hostPath: null, inferred: false });
  });
});

describe('resolveHostFolder: inference', () => {
  const cases: { name: string; def: () => { command: string; args: string[] }; expected: () => string | null }[] = [
    {
      name: 'a script file argument → its folder',
      def: () => ({ command: 'node', args: [join(proj, 'index.js')] }),
      expected: () => proj,
    },
    {
      name: 'a folder argument → that folder',
      def: () => ({ command: 'uv', args: ['--directory', proj, 'run', 'server'] }),
      expected: () => proj,
    },
    {
      name: 'a venv python command (a symlink out of the project) → the project',
      def: () => ({ command: venvPython, args: ['-m', 'server'] }),
      expected: () => proj,
    },
    {
      name: 'a venv python3 command (a link to a link) → the project',
      def: () => ({ command: join(proj, '.venv', 'bin', 'python3'), args: [] }),
      expected: () => proj,
    },
    {
      name: 'a venv python with a script in the project → the project',
      def: () => ({ command: venvPython, args: [join(proj, 'server.py')] }),
      expected: () => proj,
    },
    {
      name: 'several paths → their common folder',
      def: () => ({ command: 'python', args: [join(proj, 'src', 'pkg', 'main.py'), join(proj, 'data')] }),
      expected: () => proj,
    },
    {
      name: 'paths in sibling projects → the common parent',
      def: () => ({ command: 'python', args: [join(base, 'other', 'x.py'), join(base, 'proj2', 'y.py')] }),
      expected: () => base,
    },
    {
      name: 'a system interpreter is not a hint',
      def: () => ({ command: BASE_PYTHON, args: [join(proj, 'server.py')] }),
      expected: () => proj,
    },
    { name: 'only `/` → null', def: () => ({ command: 'ls', args: ['/'] }), expected: () => null },
    {
      name: 'no absolute path → null',
      def: () => ({ command: 'npx', args: ['-y', '@scope/server', '--port', '3000', 'relative/path.py'] }),
      expected: () => null,
    },
    {
      name: 'non-existing absolute paths are ignored',
      def: () => ({
        command: join(base, 'missing', 'bin', 'tool'),
        args: [join(base, 'nope.py'), join(proj, 'server.py')],
      }),
      expected: () => proj,
    },
    {
      name: 'only non-existing absolute paths → null',
      def: () => ({ command: '/definitely/not/here/python', args: [join(base, 'nope', 'x.py')] }),
      expected: () => null,
    },
    {
      name: 'only system paths → null',
      def: () => ({ command: BASE_PYTHON, args: ['/etc/hostname'] }),
      expected: () => null,
    },
  ];
  it.each(cases)('$name', ({ def, expected }) => {
    expect(resolveHostFolder(def(), '/cfg')).toEqual({ hostPath: expected(), inferred: true });
  });

  it('the venv fixture really is a symlink that leaves the project (so resolving first would be wrong)', () => {
    expect(realpathSync(venvPython).startsWith(proj + sep)).toBe(false);
  });

  it('paths with no common folder below `/` → null', () => {
    const firstSegment = (p: string): string => p.split(sep)[1] ?? '';
    const elsewhere = ['/var', '/opt', '/srv', '/mnt', '/home', '/root', '/tmp'].find(
      (d) => existsSync(d) && firstSegment(d) !== firstSegment(base),
    );
    expect(elsewhere).toBeDefined();
    expect(
      resolveHostFolder({ command: 'python', args: [join(proj, 'server.py'), elsewhere as string] }, '/cfg'),
    ).toEqual({ hostPath: null, inferred: true });
  });
});

describe('unwrapVenv', () => {
  it.each([
    ['/p/.venv/bin', '/p'],
    ['/p/venv/bin', '/p'],
    ['/p/env/bin', '/p'],
    ['/p/.env/bin', '/p'],
    ['/p/q/.venv/Scripts', '/p/q'],
    ['/.venv/bin', '/'],
    ['/p/bin', '/p/bin'],
    ['/p/.venv', '/p/.venv'],
    ['/p/lib/bin', '/p/lib/bin'],
    ['/p/.venv/lib', '/p/.venv/lib'],
    ['/p/.venv/bin/sub', '/p/.venv/bin/sub'],
  ])('%s → %s', (input, expected) => {
    expect(unwrapVenv(input)).toBe(expected);
  });
});

describe('commonPath', () => {
  it.each([
    { paths: ['/a/b/c'], expected: '/a/b/c' },
    { paths: ['/a/b/c', '/a/b/d'], expected: '/a/b' },
    { paths: ['/a/b', '/a/b/c/d'], expected: '/a/b' },
    { paths: ['/a/b', '/a/bc'], expected: '/a' },
    { paths: ['/a/x/1', '/a/x/2', '/a/y'], expected: '/a' },
    { paths: ['/a', '/b'], expected: '/' },
    { paths: [], expected: '/' },
  ])('$paths → $expected', ({ paths, expected }) => {
    expect(commonPath(paths)).toBe(expected);
  });
});

describe('isVenvPython', () => {
  const P = '/home/u/proj';
  it.each([
    { command: `${P}/.venv/bin/python`, expected: true },
    { command: `${P}/.venv/bin/python3`, expected: true },
    { command: `${P}/.venv/bin/python3.12`, expected: true },
    { command: `${P}/venv/bin/python`, expected: true },
    { command: `${P}/env/bin/python`, expected: true },
    { command: `${P}/.venv/Scripts/python.exe`, expected: true },
    { command: `${P}/sub/.venv/bin/python`, expected: true },
    { command: `${P}/./.venv/bin/python`, expected: true },
    { command: `${P}/.venv/bin/pip`, expected: false },
    { command: `${P}/.venv/bin/python-config`, expected: false },
    { command: `${P}/.venv/bin/pythonw`, expected: false },
    { command: `${P}/.venv/python`, expected: false },
    { command: `${P}/node_modules/bin/python`, expected: false },
    { command: `${P}/lib/bin/python`, expected: false },
    { command: '/home/u/other/.venv/bin/python', expected: false },
    { command: '/home/u/proj2/.venv/bin/python', expected: false },
    { command: '.venv/bin/python', expected: false },
    { command: 'python', expected: false },
  ])('$command → $expected', ({ command, expected }) => {
    expect(isVenvPython(command, P)).toBe(expected);
  });
});

describe('rewriteForContainer', () => {
  const C = '/box/workspace';

  it('turns the venv python into `python` and maps args under the folder', () => {
    const out = rewriteForContainer({ command: venvPython, args: ['-m', 'server', join(proj, 'server.py')] }, proj, C);
    expect(out).toEqual({ command: 'python', args: ['-m', 'server', `${C}/server.py`], cwd: C });
  });

  it.each([
    { name: 'file under the folder', arg: () => join(proj, 'src', 'pkg', 'main.py'), expected: `${C}/src/pkg/main.py` },
    {
      name: 'not yet existing path under the folder',
      arg: () => join(proj, 'out', 'result.json'),
      expected: `${C}/out/result.json`,
    },
    { name: 'un-normalised path under the folder', arg: () => `${proj}/src/../data/./x`, expected: `${C}/data/x` },
    { name: 'the folder itself', arg: () => proj, expected: C },
    { name: 'the folder with a trailing slash', arg: () => `${proj}/`, expected: C },
    {
      name: 'via a symlinked alias of the folder',
      arg: () => join(alias, 'src', 'pkg', 'main.py'),
      expected: `${C}/src/pkg/main.py`,
    },
    { name: 'the alias itself', arg: () => alias, expected: C },
    { name: 'a path outside the folder', arg: () => join(base, 'other', 'x.py'), expected: null },
    { name: 'a sibling whose name extends the folder name', arg: () => join(base, 'proj2', 'y.py'), expected: null },
    { name: 'a system path', arg: () => '/etc/hostname', expected: null },
    { name: 'a flag', arg: () => '--verbose', expected: null },
    { name: 'a relative path', arg: () => 'src/pkg/main.py', expected: null },
    { name: 'a plain word', arg: () => 'serve', expected: null },
  ])('arg: $name', ({ arg, expected }) => {
    const value = arg();
    const out = rewriteForContainer({ command: 'node', args: ['first', value] }, proj, C);
    expect(out.command).toBe('node');
    expect(out.args).toEqual(['first', expected ?? value]);
  });

  it('maps literal paths when the folder is given as its alias', () => {
    const out = rewriteForContainer(
      { command: 'python', args: [join(proj, 'server.py'), join(alias, 'data')] },
      alias,
      C,
    );
    expect(out.args).toEqual([`${C}/server.py`, `${C}/data`]);
  });

  it.each([
    { name: 'default cwd is the container folder', cwd: (): string | undefined => undefined, expected: C },
    { name: 'cwd under the folder', cwd: (): string | undefined => join(proj, 'src'), expected: `${C}/src` },
    { name: 'cwd = the folder', cwd: (): string | undefined => proj, expected: C },
    { name: 'a relative cwd is in the folder', cwd: (): string | undefined => 'sub', expected: `${C}/sub` },
  ])('$name', ({ cwd, expected }) => {
    const value = cwd();
    const def = value === undefined ? { command: 'node', args: [] } : { command: 'node', args: [], cwd: value };
    expect(rewriteForContainer(def, proj, C).cwd).toBe(expected);
  });

  it.each([
    { name: 'an absolute cwd outside the folder', cwd: (): string => join(base, 'other') },
    { name: 'a /proc cwd (CVE-2024-21626 shape)', cwd: (): string => '/proc/self/fd/8' },
    { name: 'a relative cwd that climbs out', cwd: (): string => '../..' },
  ])('refuses $name (never passed through to the exec)', ({ cwd }) => {
    expect(() => rewriteForContainer({ command: 'node', args: [], cwd: cwd() }, proj, C)).toThrow(
      expect.objectContaining({ code: 'HOST_PATH_DENIED', phase: 'workspace_stage' }) as Error,
    );
  });

  it.each([
    {
      name: 'a non-python tool of the venv is mapped, not renamed',
      command: () => join(proj, '.venv', 'bin', 'pip'),
      expected: `${C}/.venv/bin/pip`,
    },
    {
      name: 'a command inside the folder is mapped',
      command: () => join(proj, 'server.py'),
      expected: `${C}/server.py`,
    },
    { name: 'a bare command stays', command: () => 'npx', expected: 'npx' },
    { name: 'a command outside stays', command: () => '/usr/bin/env', expected: '/usr/bin/env' },
    {
      name: 'another project’s venv python stays',
      command: () => join(base, 'proj2', '.venv', 'bin', 'python'),
      expected: null,
    },
  ])('command: $name', ({ command, expected }) => {
    const value = command();
    expect(rewriteForContainer({ command: value, args: [] }, proj, C).command).toBe(expected ?? value);
  });

  it('does not modify the input definition', () => {
    const def = { command: venvPython, args: [join(proj, 'server.py')], cwd: proj };
    const copy = structuredClone(def);
    rewriteForContainer(def, proj, C);
    expect(def).toEqual(copy);
  });
});
