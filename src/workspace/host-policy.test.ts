import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { checkFolderRules, checkHostPolicy, type FolderRules } from './host-policy.js';

let base: string;
let allowed: string;
let outside: string;

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-host-policy-')));
  allowed = join(base, 'allowed');
  outside = join(base, 'outside');
  mkdirSync(join(allowed, 'proj', 'sub'), { recursive: true });
  mkdirSync(join(allowed, 'other'), { recursive: true });
  mkdirSync(join(allowed, 'home-of-someone'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(allowed, 'file.txt'), 'x');
  symlinkSync(outside, join(allowed, 'escape'));
  symlinkSync('../outside', join(allowed, 'escape-relative'));
  symlinkSync(join(allowed, 'proj'), join(allowed, 'proj-link'));
  symlinkSync(allowed, join(base, 'allowed-alias'));
  symlinkSync('nowhere', join(allowed, 'dangling'));
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

/** Runs `fn`, which must throw the policy BoxError naming `path` and matching `rule`. */
function expectDenied(fn: () => unknown, path: string, rule: RegExp): BoxError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BoxError);
  const err = caught as BoxError;
  expect(err.code).toBe('HOST_PATH_DENIED');
  expect(err.phase).toBe('workspace_stage');
  expect(err.message).toContain(path);
  expect(err.message).toMatch(rule);
  expect(err.details.path).toBe(path);
  expect(String(err.details.rule)).toMatch(rule);
  return err;
}

describe('checkHostPolicy: allowed folders', () => {
  it.each([
    { name: 'a subfolder of an allowed root', path: () => join(allowed, 'proj'), real: () => join(allowed, 'proj') },
    { name: 'a nested subfolder', path: () => join(allowed, 'proj', 'sub'), real: () => join(allowed, 'proj', 'sub') },
    {
      name: 'an un-normalised path',
      path: () => `${allowed}/proj/sub/../sub/.`,
      real: () => join(allowed, 'proj', 'sub'),
    },
    {
      name: 'a symlink to a folder inside the root → its realpath',
      path: () => join(allowed, 'proj-link'),
      real: () => join(allowed, 'proj'),
    },
    {
      name: 'a path through an alias of the root → its realpath',
      path: () => join(base, 'allowed-alias', 'proj'),
      real: () => join(allowed, 'proj'),
    },
  ])('$name', ({ path, real }) => {
    expect(checkHostPolicy(path(), { allowedRoots: [allowed] })).toBe(real());
  });

  it('compares against realpath’d roots (a root given through a symlink)', () => {
    expect(checkHostPolicy(join(allowed, 'proj'), { allowedRoots: [join(base, 'allowed-alias')] })).toBe(
      join(allowed, 'proj'),
    );
  });

  it('accepts a folder under any one of several roots', () => {
    expect(checkHostPolicy(outside, { allowedRoots: [join(allowed, 'proj'), base] })).toBe(outside);
  });

  it('a Docker socket elsewhere does not deny the folder', () => {
    vi.stubEnv('DOCKER_HOST', `unix://${join(allowed, 'other', 'docker.sock')}`);
    expect(checkHostPolicy(join(allowed, 'proj'), { allowedRoots: [allowed] })).toBe(join(allowed, 'proj'));
  });

  it('a tcp DOCKER_HOST is not a socket path', () => {
    vi.stubEnv('DOCKER_HOST', `tcp://${join(allowed, 'proj')}/x:2375`);
    expect(checkHostPolicy(join(allowed, 'proj'), { allowedRoots: [allowed] })).toBe(join(allowed, 'proj'));
  });
});

describe('checkHostPolicy: denials', () => {
  it.each([
    {
      name: 'a symlink that points outside the allowed root',
      path: () => join(allowed, 'escape'),
      rule: /not under an allowed root/,
    },
    {
      name: 'a relative symlink that points outside the allowed root',
      path: () => join(allowed, 'escape-relative'),
      rule: /not under an allowed root/,
    },
    { name: 'a folder outside all allowed roots', path: () => outside, rule: /not under an allowed root/ },
    { name: 'the parent of the allowed root', path: () => base, rule: /not under an allowed root/ },
    {
      name: 'the allowed root itself (the config folder by default)',
      path: () => allowed,
      rule: /is the allowed root .* itself/,
    },
    {
      name: 'the allowed root through an alias',
      path: () => join(base, 'allowed-alias'),
      rule: /is the allowed root .* itself/,
    },
    { name: 'a path that does not exist', path: () => join(allowed, 'missing'), rule: /does not exist/ },
    { name: 'a dangling symlink', path: () => join(allowed, 'dangling'), rule: /does not exist/ },
    { name: 'a file instead of a folder', path: () => join(allowed, 'file.txt'), rule: /not a folder/ },
  ])('$name', ({ path, rule }) => {
    const p = path();
    expectDenied(() => checkHostPolicy(p, { allowedRoots: [allowed] }), p, rule);
  });

  it('a folder whose name only extends an allowed root is outside it', () => {
    const sibling = `${allowed}-sibling`;
    mkdirSync(sibling);
    try {
      expectDenied(() => checkHostPolicy(sibling, { allowedRoots: [allowed] }), sibling, /not under an allowed root/);
    } finally {
      rmSync(sibling, { recursive: true, force: true });
    }
  });

  it('lists the configured roots in the rule, or "none"', () => {
    const err = expectDenied(
      () => checkHostPolicy(outside, { allowedRoots: [allowed] }),
      outside,
      /not under an allowed root/,
    );
    expect(err.message).toContain(JSON.stringify(allowed));
    expect(err.details.allowedRoots).toEqual([allowed]);
    expectDenied(() => checkHostPolicy(outside, { allowedRoots: [] }), outside, /allowedRoots: none/);
  });

  // `/` as an allowed root makes sure the specific rule, not the root check, denies these.
  it.each([
    { path: '/', rule: /\/ itself is never staged/ },
    { path: '/tmp', rule: /\/tmp itself is never staged/ },
    { path: '/etc', rule: /inside the system folder \/etc/ },
    { path: '/etc/ssl', rule: /inside the system folder \/etc/ },
    { path: '/proc', rule: /inside the system folder \/proc/ },
    { path: '/proc/self', rule: /inside the system folder \/proc/ },
    { path: '/sys', rule: /inside the system folder \/sys/ },
    { path: '/dev', rule: /inside the system folder \/dev/ },
  ])('$path is denied even under an allowed root `/`', ({ path, rule }) => {
    expect(existsSync(path)).toBe(true);
    expectDenied(() => checkHostPolicy(path, { allowedRoots: ['/'] }), path, rule);
  });

  it('the current user’s home folder itself is denied', () => {
    const home = homedir();
    expect(existsSync(home)).toBe(true);
    expectDenied(
      () => checkHostPolicy(home, { allowedRoots: ['/'] }),
      home,
      /itself is never staged|is the home folder/,
    );
  });

  it('a home folder (from HOME) is denied by the home rule, a project inside it is not', () => {
    const home = join(allowed, 'home-of-someone');
    mkdirSync(join(home, 'project'), { recursive: true });
    vi.stubEnv('HOME', home);
    expect(homedir()).toBe(home);
    expectDenied(() => checkHostPolicy(home, { allowedRoots: [allowed] }), home, /is the home folder/);
    expect(checkHostPolicy(join(home, 'project'), { allowedRoots: [allowed] })).toBe(join(home, 'project'));
  });

  it.each([
    { name: 'the folder holding the socket’s folder', folder: () => join(allowed, 'proj') },
    { name: 'the socket’s own folder', folder: () => join(allowed, 'proj', 'sub') },
    { name: 'the allowed root above it', folder: () => allowed },
  ])('a folder that holds the DOCKER_HOST socket: $name', ({ folder }) => {
    const socket = join(allowed, 'proj', 'sub', 'docker.sock');
    writeFileSync(socket, '');
    try {
      vi.stubEnv('DOCKER_HOST', `unix://${socket}`);
      const f = folder();
      const err = expectDenied(() => checkHostPolicy(f, { allowedRoots: [allowed] }), f, /holds the Docker socket/);
      expect(err.message).toContain(socket);
    } finally {
      rmSync(socket, { force: true });
    }
  });

  it('a DOCKER_HOST socket reached through a symlinked folder is still found', () => {
    const socket = join(base, 'allowed-alias', 'proj', 'sub', 'docker.sock');
    writeFileSync(socket, '');
    try {
      vi.stubEnv('DOCKER_HOST', `unix://${socket}`);
      const f = join(allowed, 'proj');
      expectDenied(() => checkHostPolicy(f, { allowedRoots: [allowed] }), f, /holds the Docker socket/);
    } finally {
      rmSync(socket, { force: true });
    }
  });
});

describe('checkFolderRules: what a server folder may never hold or overlap', () => {
  const rules = (over: Partial<FolderRules> = {}): FolderRules => ({
    allowedRoots: [allowed],
    protectedFolders: [
      { path: join(allowed, 'proj', 'sub'), what: 'the config folder' },
      { path: join(allowed, 'other', 'state'), what: 'the state folder' },
    ],
    otherServers: [],
    ...over,
  });

  it.each([
    { name: 'the allowed root itself', path: () => allowed, rule: /is the allowed root .* itself/ },
    { name: 'the config folder', path: () => join(allowed, 'proj', 'sub'), rule: /holds the config folder/ },
    { name: 'a folder holding the config folder', path: () => join(allowed, 'proj'), rule: /holds the config folder/ },
    {
      name: 'a folder holding the state folder, which need not exist yet',
      path: () => join(allowed, 'other'),
      rule: /holds the state folder/,
    },
    {
      name: 'the config folder through a symlink',
      path: () => join(allowed, 'proj-link'),
      rule: /holds the config folder/,
    },
  ])('refuses $name', ({ path, rule }) => {
    const p = path();
    expectDenied(() => checkFolderRules(p, rules()), p, rule);
  });

  it('refuses a folder equal to, inside or around another server folder, naming that server', () => {
    const others = { otherServers: [{ name: 'a', folder: join(allowed, 'proj') }], protectedFolders: [] };
    for (const p of [join(allowed, 'proj'), join(allowed, 'proj', 'sub'), join(allowed, 'proj-link')]) {
      expect(
        expectDenied(() => checkFolderRules(p, rules(others)), p, /overlaps the folder of server "a"/).details,
      ).toMatchObject({ server: 'a' });
    }
    expect(() => checkFolderRules(join(allowed, 'other'), rules(others))).not.toThrow();
  });

  it('lets a folder beside them pass, and one that does not exist (checkHostPolicy refuses it at staging)', () => {
    expect(() =>
      checkFolderRules(
        join(allowed, 'other'),
        rules({ protectedFolders: [{ path: join(allowed, 'proj', 'sub'), what: 'the config folder' }] }),
      ),
    ).not.toThrow();
    expect(() => checkFolderRules(join(allowed, 'missing'), rules())).not.toThrow();
  });
});
