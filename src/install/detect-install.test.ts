import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { thrown } from '../../test/helpers/thrown.js';
import {
  activationEnv,
  activationPathPrefix,
  detectInstallPlan,
  installEnv,
  installFingerprints,
  installScript,
  nodeDepsDir,
  pythonDepsDir,
  type FolderView,
  type InstallOptions,
  type InstallPaths,
  type InstallPlan,
  type ToolVersions,
} from './detect-install.js';

const TOOLS: ToolVersions = {
  python: '3.12.3',
  pip: '24.0',
  node: '20.11.1',
  npm: '10.2.4',
  uv: '0.4.18',
  pnpm: '9.1.0',
  yarn: '1.22.22',
};
const NO_EXTRAS: ToolVersions = { ...TOOLS, uv: null, pnpm: null, yarn: null };

/** An in-memory folder: root names are the keys without a `/`. */
function folder(files: Record<string, string>): FolderView & { reads: string[] } {
  const map = new Map(Object.entries(files));
  const reads: string[] = [];
  return {
    rootNames: new Set([...map.keys()].filter((k) => !k.includes('/'))),
    reads,
    read(rel: string): string | null {
      reads.push(rel);
      return map.get(rel) ?? null;
    },
  };
}

const names = (...list: string[]): Record<string, string> =>
  Object.fromEntries(list.map((n) => [n, n.endsWith('.txt') ? 'requests\n' : '{}']));

describe('detectInstallPlan', () => {
  const req = (manifests: string[], requirements: string[]): InstallPlan['python'] => ({
    mode: 'requirements',
    manifests,
    requirements,
  });
  const pkg = (manifests: string[]): InstallPlan['python'] => ({ mode: 'package', manifests, requirements: [] });

  it.each([
    {
      name: 'requirements.txt only',
      files: names('requirements.txt'),
      tools: TOOLS,
      python: req(['requirements.txt'], ['requirements.txt']),
      node: null,
      notes: [],
    },
    {
      name: 'requirements.txt wins over pyproject.toml (with a note)',
      files: names('requirements.txt', 'pyproject.toml'),
      tools: TOOLS,
      python: req(['requirements.txt'], ['requirements.txt']),
      node: null,
      notes: [/requirements\.txt found: installing it, not the package/],
    },
    {
      name: 'requirements.txt wins over setup.py (with a note)',
      files: names('requirements.txt', 'setup.py'),
      tools: TOOLS,
      python: req(['requirements.txt'], ['requirements.txt']),
      node: null,
      notes: [/requirements\.txt found/],
    },
    {
      name: 'requirements.txt wins over the other requirements files, which are still fingerprinted',
      files: names('requirements.txt', 'requirements-dev.txt', 'requirements-extra.txt'),
      tools: TOOLS,
      python: req(['requirements-dev.txt', 'requirements-extra.txt', 'requirements.txt'], ['requirements.txt']),
      node: null,
      notes: [],
    },
    {
      name: 'several requirements-*.txt without requirements.txt (dev/test/doc/lint/ci/typing/bench excluded)',
      files: names(
        'requirements-prod.txt',
        'requirements-dev.txt',
        'requirements-test.txt',
        'requirements-docs.txt',
        'requirements-lint.txt',
        'requirements-ci.txt',
        'requirements-typing.txt',
        'requirements-bench.txt',
        'requirements-gpu.txt',
      ),
      tools: TOOLS,
      python: req(
        [
          'requirements-bench.txt',
          'requirements-ci.txt',
          'requirements-dev.txt',
          'requirements-docs.txt',
          'requirements-gpu.txt',
          'requirements-lint.txt',
          'requirements-prod.txt',
          'requirements-test.txt',
          'requirements-typing.txt',
        ],
        ['requirements-gpu.txt', 'requirements-prod.txt'],
      ),
      node: null,
      notes: [],
    },
    {
      name: 'only dev/test requirements and a pyproject → the package',
      files: names('requirements-dev.txt', 'requirements_test.txt', 'pyproject.toml'),
      tools: TOOLS,
      python: pkg(['pyproject.toml']),
      node: null,
      notes: [],
    },
    {
      name: 'pyproject.toml only → package',
      files: names('pyproject.toml'),
      tools: TOOLS,
      python: pkg(['pyproject.toml']),
      node: null,
      notes: [],
    },
    {
      name: 'setup.py → package',
      files: names('setup.py'),
      tools: TOOLS,
      python: pkg(['setup.py']),
      node: null,
      notes: [],
    },
    {
      name: 'setup.cfg → package',
      files: names('setup.cfg'),
      tools: TOOLS,
      python: pkg(['setup.cfg']),
      node: null,
      notes: [],
    },
    {
      name: 'pyproject + setup.py + setup.cfg → package',
      files: names('setup.cfg', 'setup.py', 'pyproject.toml'),
      tools: TOOLS,
      python: pkg(['pyproject.toml', 'setup.py', 'setup.cfg']),
      node: null,
      notes: [],
    },
    {
      name: 'uv.lock + pyproject with uv → uv',
      files: names('pyproject.toml', 'uv.lock'),
      tools: TOOLS,
      python: { mode: 'uv', manifests: ['pyproject.toml', 'uv.lock'], requirements: [] },
      node: null,
      notes: [],
    },
    {
      name: 'uv.lock + pyproject without uv → package (with a note)',
      files: names('pyproject.toml', 'uv.lock'),
      tools: NO_EXTRAS,
      python: pkg(['pyproject.toml', 'uv.lock']),
      node: null,
      notes: [/uv\.lock found but the image has no uv/],
    },
    {
      name: 'requirements.txt wins over uv.lock',
      files: names('requirements.txt', 'pyproject.toml', 'uv.lock'),
      tools: TOOLS,
      python: req(['requirements.txt'], ['requirements.txt']),
      node: null,
      notes: [/requirements\.txt found/],
    },
    {
      name: 'poetry.lock → package (with a note)',
      files: names('pyproject.toml', 'poetry.lock'),
      tools: TOOLS,
      python: pkg(['pyproject.toml', 'poetry.lock']),
      node: null,
      notes: [/poetry\.lock found: installing the package with pip/],
    },
    {
      name: 'package.json + package-lock.json → npm ci',
      files: names('package.json', 'package-lock.json'),
      tools: TOOLS,
      python: null,
      node: { tool: 'npm-ci', manifests: ['package.json', 'package-lock.json'] },
      notes: [],
    },
    {
      name: 'npm-shrinkwrap.json → npm ci',
      files: names('package.json', 'npm-shrinkwrap.json'),
      tools: TOOLS,
      python: null,
      node: { tool: 'npm-ci', manifests: ['package.json', 'npm-shrinkwrap.json'] },
      notes: [],
    },
    {
      name: 'package-lock.json is preferred over npm-shrinkwrap.json',
      files: names('package.json', 'npm-shrinkwrap.json', 'package-lock.json'),
      tools: TOOLS,
      python: null,
      node: { tool: 'npm-ci', manifests: ['package.json', 'package-lock.json'] },
      notes: [],
    },
    {
      name: 'an npm lock wins over pnpm/yarn locks (even without those tools)',
      files: names('package.json', 'package-lock.json', 'pnpm-lock.yaml', 'yarn.lock'),
      tools: NO_EXTRAS,
      python: null,
      node: { tool: 'npm-ci', manifests: ['package.json', 'package-lock.json'] },
      notes: [],
    },
    {
      name: 'pnpm-lock.yaml with pnpm → pnpm',
      files: names('package.json', 'pnpm-lock.yaml'),
      tools: TOOLS,
      python: null,
      node: { tool: 'pnpm', manifests: ['package.json', 'pnpm-lock.yaml'] },
      notes: [],
    },
    {
      name: 'yarn.lock with yarn → yarn',
      files: names('package.json', 'yarn.lock'),
      tools: TOOLS,
      python: null,
      node: { tool: 'yarn', manifests: ['package.json', 'yarn.lock'] },
      notes: [],
    },
    {
      name: 'pnpm-lock.yaml is preferred over yarn.lock',
      files: names('package.json', 'yarn.lock', 'pnpm-lock.yaml'),
      tools: TOOLS,
      python: null,
      node: { tool: 'pnpm', manifests: ['package.json', 'pnpm-lock.yaml'] },
      notes: [],
    },
    {
      name: 'package.json alone → npm install (with a note)',
      files: names('package.json'),
      tools: TOOLS,
      python: null,
      node: { tool: 'npm-install', manifests: ['package.json'] },
      notes: [/package\.json has no lockfile/],
    },
    {
      name: 'a Python and a Node part together',
      files: names('requirements.txt', 'package.json', 'package-lock.json'),
      tools: TOOLS,
      python: req(['requirements.txt'], ['requirements.txt']),
      node: { tool: 'npm-ci', manifests: ['package.json', 'package-lock.json'] },
      notes: [],
    },
  ])('$name', ({ files, tools, python, node, notes }) => {
    const plan = detectInstallPlan(folder(files), tools);
    expect(plan).not.toBeNull();
    expect(plan?.python).toEqual(python);
    expect(plan?.node).toEqual(node);
    expect(plan?.notes).toHaveLength(notes.length);
    notes.forEach((note, i) => expect(plan?.notes[i]).toMatch(note));
  });

  it.each([
    { name: 'an empty folder', files: {} },
    { name: 'only sources', files: names('server.py', 'README.md', 'index.js') },
    { name: 'a lockfile without package.json', files: names('package-lock.json', 'yarn.lock') },
    { name: 'uv.lock without pyproject.toml', files: names('uv.lock') },
    { name: 'poetry.lock without pyproject.toml', files: names('poetry.lock') },
    { name: 'requirements.in only', files: names('requirements.in') },
    { name: 'only dev/test requirement files', files: names('requirements-dev.txt', 'requirements-test.txt') },
  ])('nothing to install: $name → null', ({ files }) => {
    expect(detectInstallPlan(folder(files), TOOLS)).toBeNull();
  });

  it.each([
    {
      name: 'requirements without python',
      files: names('requirements.txt'),
      tools: { ...TOOLS, python: null },
      message: /Python project but the sandbox image has no python3/,
    },
    {
      name: 'a package without python',
      files: names('pyproject.toml'),
      tools: { ...TOOLS, python: null },
      message: /no python3/,
    },
    {
      name: 'pnpm-lock.yaml without pnpm',
      files: names('package.json', 'pnpm-lock.yaml'),
      tools: NO_EXTRAS,
      message: /pnpm-lock\.yaml found but the sandbox image has no pnpm/,
    },
    {
      name: 'yarn.lock without yarn',
      files: names('package.json', 'yarn.lock'),
      tools: NO_EXTRAS,
      message: /yarn\.lock found but the sandbox image has no yarn/,
    },
    {
      name: 'a Node project without node',
      files: names('package.json', 'package-lock.json'),
      tools: { ...TOOLS, node: null },
      message: /Node project but the sandbox image has no node/,
    },
  ])('INSTALL_FAILED: $name', ({ files, tools, message }) => {
    const err = thrown(() => detectInstallPlan(folder(files), tools));
    expect(err.code).toBe('INSTALL_FAILED');
    expect(err.phase).toBe('dep_install');
    expect(err.message).toMatch(message);
  });

  it('names the manifests when python is missing', () => {
    const err = thrown(() =>
      detectInstallPlan(folder(names('pyproject.toml', 'setup.py')), { ...TOOLS, python: null }),
    );
    expect(err.details.manifests).toEqual(['pyproject.toml', 'setup.py']);
  });

  it('follows -r includes (relative to each file) and adds them to the manifests', () => {
    const view = folder({
      'requirements.txt': '-r reqs/base.txt\nrequests\n-c constraints.txt\n',
      'reqs/base.txt': '-r common.txt\nhttpx\n',
      'reqs/common.txt': '-r ../requirements.txt\npydantic\n', // a cycle back to the top
      'constraints.txt': 'requests<3\n',
    });
    const plan = detectInstallPlan(view, TOOLS);
    expect(plan?.python).toEqual({
      mode: 'requirements',
      manifests: ['constraints.txt', 'reqs/base.txt', 'reqs/common.txt', 'requirements.txt'],
      requirements: ['requirements.txt'],
    });
    expect(view.reads.filter((r) => r === 'requirements.txt')).toHaveLength(1);
  });

  it('reads only the chosen requirement files and their includes', () => {
    const view = folder({ 'requirements-prod.txt': 'requests\n', 'requirements-dev.txt': 'pytest\n', 'server.py': '' });
    detectInstallPlan(view, TOOLS);
    expect(view.reads).toEqual(['requirements-prod.txt']);
  });

  it('an include that was not staged is an INVALID_REQUIREMENT', () => {
    const err = thrown(() => detectInstallPlan(folder({ 'requirements.txt': '-r reqs/missing.txt\n' }), TOOLS));
    expect(err.code).toBe('INVALID_REQUIREMENT');
    expect(err.phase).toBe('dep_install');
    expect(err.message).toContain('reqs/missing.txt is referenced but was not staged');
    expect(err.details.file).toBe('reqs/missing.txt');
  });

  it.each<{ name: string; files: Record<string, string>; where: string }>([
    {
      name: 'in the chosen file',
      files: { 'requirements.txt': 'requests\n--index-url https://evil.example/simple\n' },
      where: 'requirements.txt:2',
    },
    {
      name: 'in an included file',
      files: { 'requirements.txt': '-r reqs/base.txt\n', 'reqs/base.txt': 'x\n-e ../../outside\n' },
      where: 'reqs/base.txt:2',
    },
    {
      name: 'an include leaving the folder',
      files: { 'requirements.txt': '-r ../outside.txt\n' },
      where: 'requirements.txt:1',
    },
  ])('validates requirement files: $name', ({ files, where }) => {
    const err = thrown(() => detectInstallPlan(folder(files), TOOLS));
    expect(err.code).toBe('INVALID_REQUIREMENT');
    expect(err.message.startsWith(`${where}: `)).toBe(true);
  });
});

describe('installFingerprints', () => {
  const reqPlan: InstallPlan = {
    python: { mode: 'requirements', manifests: ['requirements.txt'], requirements: ['requirements.txt'] },
    node: { tool: 'npm-ci', manifests: ['package.json', 'package-lock.json'] },
    notes: [],
  };
  const pkgPlan: InstallPlan = {
    python: { mode: 'package', manifests: ['pyproject.toml'], requirements: [] },
    node: null,
    notes: [],
  };
  const hashes = new Map([
    ['requirements.txt', 'r1'],
    ['package.json', 'p1'],
    ['package-lock.json', 'l1'],
    ['pyproject.toml', 't1'],
    ['server.py', 's1'],
  ]);
  const withHash = (rel: string, hash: string | null): Map<string, string> => {
    const m = new Map(hashes);
    if (hash === null) m.delete(rel);
    else m.set(rel, hash);
    return m;
  };
  const base = installFingerprints(reqPlan, hashes, TOOLS, {});
  const basePkg = installFingerprints(pkgPlan, hashes, TOOLS, {});

  it('is stable, short hex, and null for absent parts', () => {
    expect(installFingerprints(reqPlan, new Map(hashes), { ...TOOLS }, {})).toEqual(base);
    expect(base.python).toMatch(/^[0-9a-f]{16}$/);
    expect(base.node).toMatch(/^[0-9a-f]{16}$/);
    expect(base.python).not.toBe(base.node);
    expect(basePkg.node).toBeNull();
    expect(installFingerprints({ python: null, node: null, notes: [] }, hashes, TOOLS, {})).toEqual({
      python: null,
      node: null,
    });
  });

  it('treats explicit empty/false options like absent ones', () => {
    expect(
      installFingerprints(reqPlan, hashes, TOOLS, {
        extraIndexUrls: [],
        findLinks: [],
        trustedHosts: [],
        noIndex: false,
      }),
    ).toEqual(base);
  });

  type Change = {
    name: string;
    hashes?: Map<string, string>;
    tools?: ToolVersions;
    opts?: InstallOptions;
    python: boolean;
    node: boolean;
  };
  const changes: Change[] = [
    { name: 'requirements.txt hash', hashes: withHash('requirements.txt', 'r2'), python: true, node: false },
    { name: 'requirements.txt missing', hashes: withHash('requirements.txt', null), python: true, node: false },
    { name: 'package-lock.json hash', hashes: withHash('package-lock.json', 'l2'), python: false, node: true },
    { name: 'package.json hash', hashes: withHash('package.json', 'p2'), python: false, node: true },
    { name: 'an unrelated file', hashes: withHash('server.py', 's2'), python: false, node: false },
    { name: 'a new unrelated file', hashes: withHash('new.py', 'n1'), python: false, node: false },
    { name: 'python version', tools: { ...TOOLS, python: '3.12.4' }, python: true, node: false },
    { name: 'pip version', tools: { ...TOOLS, pip: '24.1' }, python: true, node: false },
    { name: 'uv version', tools: { ...TOOLS, uv: null }, python: true, node: false },
    { name: 'node version', tools: { ...TOOLS, node: '22.0.0' }, python: false, node: true },
    { name: 'npm version', tools: { ...TOOLS, npm: '10.9.0' }, python: false, node: true },
    { name: 'pnpm version', tools: { ...TOOLS, pnpm: null }, python: false, node: true },
    { name: 'yarn version', tools: { ...TOOLS, yarn: '4.0.0' }, python: false, node: true },
    { name: 'indexUrl', opts: { indexUrl: 'https://mirror.example/simple' }, python: true, node: false },
    { name: 'extraIndexUrls', opts: { extraIndexUrls: ['https://extra.example/simple'] }, python: true, node: false },
    { name: 'findLinks', opts: { findLinks: ['wheels'] }, python: true, node: false },
    { name: 'trustedHosts', opts: { trustedHosts: ['mirror.example'] }, python: true, node: false },
    { name: 'noIndex', opts: { noIndex: true }, python: true, node: false },
    { name: 'npmRegistry', opts: { npmRegistry: 'https://npm.example/' }, python: false, node: true },
  ];
  it.each(changes)('requirements + npm plan, change $name → python changes: $python, node changes: $node', (c) => {
    const fp = installFingerprints(reqPlan, c.hashes ?? hashes, c.tools ?? TOOLS, c.opts ?? {});
    expect(fp.python !== base.python).toBe(c.python);
    expect(fp.node !== base.node).toBe(c.node);
  });

  it.each([
    { name: 'the pyproject hash', hashes: withHash('pyproject.toml', 't2'), changes: true },
    { name: 'a source file’s hash', hashes: withHash('server.py', 's2'), changes: true },
    { name: 'a new source file', hashes: withHash('pkg/new.py', 'n1'), changes: true },
    { name: 'a removed file', hashes: withHash('server.py', null), changes: true },
    { name: 'only the map’s insertion order', hashes: new Map([...hashes].reverse()), changes: false },
  ])('package plan depends on every file: $name → changes: $changes', ({ hashes: h, changes: expected }) => {
    expect(installFingerprints(pkgPlan, h, TOOLS, {}).python !== basePkg.python).toBe(expected);
  });

  it('the mode and the chosen requirement files are part of the fingerprint', () => {
    const other: InstallPlan = {
      ...reqPlan,
      python: {
        mode: 'requirements',
        manifests: ['requirements.txt'],
        requirements: ['requirements.txt', 'requirements.txt'],
      },
    };
    expect(installFingerprints(other, hashes, TOOLS, {}).python).not.toBe(base.python);
    const uv: InstallPlan = {
      ...reqPlan,
      python: { mode: 'uv', manifests: ['requirements.txt'], requirements: ['requirements.txt'] },
    };
    expect(installFingerprints(uv, hashes, TOOLS, {}).python).not.toBe(base.python);
    const yarn: InstallPlan = { ...reqPlan, node: { tool: 'yarn', manifests: ['package.json', 'package-lock.json'] } };
    expect(installFingerprints(yarn, hashes, TOOLS, {}).node).not.toBe(base.node);
  });
});

describe('installScript', () => {
  const paths: InstallPaths = { root: '/box/id-1', workspace: '/box/id-1/workspace', caBundle: null };
  const plan = (python: InstallPlan['python'], node: InstallPlan['node']): InstallPlan => ({ python, node, notes: [] });
  const requirements = (...reqs: string[]): InstallPlan['python'] => ({
    mode: 'requirements',
    manifests: reqs,
    requirements: reqs,
  });
  const lines = (script: string): string[] => script.split('\n');
  /** `needles` appear as whole lines, in this order. */
  const expectInOrder = (script: string, needles: string[]): void => {
    const all = lines(script);
    const positions = needles.map((n) => all.indexOf(n));
    expect(
      positions.every((p) => p >= 0),
      `missing one of ${JSON.stringify(needles)} in:\n${script}`,
    ).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  };

  it('python requirements: venv, pip install -r per file, .done marker, old generations removed', () => {
    const script = installScript(
      plan(requirements('requirements-a.txt', 'requirements-b.txt'), null),
      { python: 'abc123', node: null },
      paths,
    );
    expect(lines(script).slice(0, 2)).toEqual(['set -eu', "cd '/box/id-1/workspace'"]);
    expectInOrder(script, [
      "D='/box/id-1/deps/py-abc123'",
      'rm -rf "$D"',
      'mkdir -p "$D"',
      'python3 -m venv "$D/venv"',
      `"$D/venv/bin/python" -m pip install -r 'requirements-a.txt'`,
      `"$D/venv/bin/python" -m pip install -r 'requirements-b.txt'`,
      'touch "$D/.done"',
      `for old in '/box/id-1/deps'/py-*; do [ "$old" = "$D" ] || rm -rf "$old"; done`,
    ]);
    expect(script).not.toMatch(/npm|node_modules/);
  });

  it.each([
    { mode: 'package' as const, command: '"$D/venv/bin/python" -m pip install .' },
    { mode: 'uv' as const, command: 'UV_PROJECT_ENVIRONMENT="$D/venv" uv sync --frozen --no-dev' },
  ])('python $mode', ({ mode, command }) => {
    const script = installScript(
      plan({ mode, manifests: ['pyproject.toml'], requirements: [] }, null),
      { python: 'f00', node: null },
      paths,
    );
    expectInOrder(script, ['python3 -m venv "$D/venv"', command, 'touch "$D/.done"']);
    expect(script).not.toContain('pip install -r');
  });

  it.each([
    { tool: 'npm-ci' as const, command: 'npm ci' },
    { tool: 'npm-install' as const, command: 'npm install --no-package-lock' },
    { tool: 'pnpm' as const, command: 'pnpm install --frozen-lockfile' },
    { tool: 'yarn' as const, command: 'yarn install --frozen-lockfile' },
  ])('node $tool: install, move node_modules to the deps folder, link it back', ({ tool, command }) => {
    const script = installScript(
      plan(null, { tool, manifests: ['package.json'] }),
      { python: null, node: 'beef' },
      paths,
    );
    expectInOrder(script, [
      'set -eu',
      "cd '/box/id-1/workspace'",
      "N='/box/id-1/deps/node-beef'",
      'rm -rf "$N" node_modules',
      'mkdir -p "$N"',
      command,
      'mv node_modules "$N/node_modules"',
      'ln -s "../deps/node-beef/node_modules" node_modules',
      'touch "$N/.done"',
      `for old in '/box/id-1/deps'/node-*; do [ "$old" = "$N" ] || rm -rf "$old"; done`,
    ]);
    expect(script).not.toContain('python3');
  });

  it('installs nothing for parts whose fingerprint is null', () => {
    const both = plan(requirements('requirements.txt'), {
      tool: 'npm-ci',
      manifests: ['package.json', 'package-lock.json'],
    });
    expect(installScript(both, { python: null, node: null }, paths)).toBe("set -eu\ncd '/box/id-1/workspace'");
    const onlyNode = installScript(both, { python: null, node: 'n1' }, paths);
    expect(onlyNode).not.toContain('venv');
    expect(onlyNode).toContain('npm ci');
    const onlyPython = installScript(both, { python: 'p1', node: null }, paths);
    expect(onlyPython).toContain('pip install -r');
    expect(onlyPython).not.toContain('npm');
  });

  it('python runs before node when both are installed', () => {
    const script = installScript(
      plan(requirements('requirements.txt'), { tool: 'npm-ci', manifests: ['package.json'] }),
      { python: 'p1', node: 'n1' },
      paths,
    );
    expectInOrder(script, ['touch "$D/.done"', 'npm ci', 'touch "$N/.done"']);
  });

  describe('shell quoting of paths with a single quote (evaluated by sh)', () => {
    let tmp: string | undefined;
    afterAll(() => {
      if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
    });

    it('cd, D=, N= and the pip -r argument survive the shell intact', () => {
      tmp = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-quote-')));
      const root = join(tmp, 'it\'s $HOME `x` "q"');
      const workspace = join(root, 'workspace');
      mkdirSync(workspace, { recursive: true });
      const p: InstallPaths = { root, workspace, caBundle: null };
      const req = "requirements-o'k.txt";
      const script = installScript(
        plan(requirements(req), { tool: 'npm-ci', manifests: ['package.json'] }),
        { python: 'p1', node: 'n1' },
        p,
      );
      const all = lines(script);
      const pick = (prefix: string): string => all.find((l) => l.startsWith(prefix)) ?? '';
      const pipLine = pick('"$D/venv/bin/python" -m pip install -r ');
      const probe = [
        pick('cd '),
        'pwd',
        pick('D='),
        'printf "%s\\n" "$D"',
        pick('N='),
        'printf "%s\\n" "$N"',
        `set -- ${pipLine.slice('"$D/venv/bin/python" -m pip install -r '.length)}`,
        'printf "%s|%s\\n" "$#" "$1"',
      ].join('\n');
      const out = execFileSync('sh', ['-c', probe], { encoding: 'utf8' }).split('\n');
      expect(out.slice(0, 4)).toEqual([workspace, pythonDepsDir(p, 'p1'), nodeDepsDir(p, 'n1'), `1|${req}`]);
      execFileSync('sh', ['-n', '-c', script]); // the whole script parses
    });
  });
});

describe('installEnv', () => {
  const paths: InstallPaths = { root: '/box/id-2', workspace: '/box/id-2/workspace', caBundle: null };
  const CA_VARS = ['PIP_CERT', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'NODE_OPTIONS', 'npm_config_cafile'];
  const INDEX_VARS = [
    'PIP_INDEX_URL',
    'PIP_EXTRA_INDEX_URL',
    'PIP_FIND_LINKS',
    'PIP_TRUSTED_HOST',
    'PIP_NO_INDEX',
    'npm_config_registry',
  ];

  it('is non-interactive, without progress bars, with per-server caches under the root', () => {
    const env = installEnv(paths, {});
    expect(env).toMatchObject({
      PIP_NO_INPUT: '1',
      PIP_PROGRESS_BAR: 'off',
      PIP_DISABLE_PIP_VERSION_CHECK: '1',
      npm_config_progress: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      CI: 'true',
      PIP_CACHE_DIR: '/box/id-2/cache/pip',
      npm_config_cache: '/box/id-2/cache/npm',
    });
    for (const key of [...CA_VARS, ...INDEX_VARS]) expect(env, key).not.toHaveProperty(key);
  });

  it.each([
    {
      opts: { indexUrl: 'https://mirror.example/simple' },
      expected: { PIP_INDEX_URL: 'https://mirror.example/simple' },
    },
    {
      opts: { extraIndexUrls: ['https://a.example/simple', 'https://b.example/simple'] },
      expected: { PIP_EXTRA_INDEX_URL: 'https://a.example/simple https://b.example/simple' },
    },
    {
      opts: { findLinks: ['wheels', 'https://w.example/'] },
      expected: { PIP_FIND_LINKS: 'wheels https://w.example/' },
    },
    { opts: { trustedHosts: ['a.example', 'b.example'] }, expected: { PIP_TRUSTED_HOST: 'a.example b.example' } },
    { opts: { noIndex: true }, expected: { PIP_NO_INDEX: '1' } },
    { opts: { noIndex: false, extraIndexUrls: [], findLinks: [], trustedHosts: [] }, expected: {} },
    { opts: { npmRegistry: 'https://npm.example/' }, expected: { npm_config_registry: 'https://npm.example/' } },
  ])('maps $opts', ({ opts, expected }) => {
    const env = installEnv(paths, opts);
    const index = Object.fromEntries(Object.entries(env).filter(([k]) => INDEX_VARS.includes(k)));
    expect(index).toEqual(expected);
  });

  it('sets the CA variables only when a CA bundle is staged', () => {
    const env = installEnv({ ...paths, caBundle: '/box/id-2/ca.pem' }, {});
    for (const key of CA_VARS.filter((k) => k !== 'NODE_OPTIONS')) expect(env[key], key).toBe('/box/id-2/ca.pem');
    // Node trusts the same bundle through OpenSSL (SSL_CERT_FILE), read on first use, not at every start.
    expect(env.NODE_OPTIONS).toBe('--use-openssl-ca');
    expect(env).not.toHaveProperty('NODE_EXTRA_CA_CERTS');
  });
});

describe('activationEnv', () => {
  const paths: InstallPaths = { root: '/box/id-3', workspace: '/box/id-3/workspace', caBundle: null };
  const BASE = '/usr/local/bin:/usr/bin:/bin';
  const both: InstallPlan = {
    python: { mode: 'requirements', manifests: [], requirements: [] },
    node: { tool: 'npm-ci', manifests: [] },
    notes: [],
  };

  it.each([
    {
      name: 'python and node: venv bin, node_modules/.bin, then the base PATH',
      plan: both,
      fps: { python: 'p1', node: 'n1' },
      expected: {
        VIRTUAL_ENV: '/box/id-3/deps/py-p1/venv',
        PATH: `/box/id-3/deps/py-p1/venv/bin:/box/id-3/workspace/node_modules/.bin:${BASE}`,
      },
    },
    { name: 'no plan: just the base PATH', plan: null, fps: { python: null, node: null }, expected: { PATH: BASE } },
    {
      name: 'python only',
      plan: { ...both, node: null },
      fps: { python: 'p1', node: null },
      expected: { VIRTUAL_ENV: '/box/id-3/deps/py-p1/venv', PATH: `/box/id-3/deps/py-p1/venv/bin:${BASE}` },
    },
    {
      name: 'node only',
      plan: { ...both, python: null },
      fps: { python: null, node: 'n1' },
      expected: { PATH: `/box/id-3/workspace/node_modules/.bin:${BASE}` },
    },
    {
      name: 'a python plan without a fingerprint has no venv',
      plan: { ...both, node: null },
      fps: { python: null, node: null },
      expected: { PATH: BASE },
    },
  ])('$name', ({ plan, fps, expected }) => {
    expect(activationEnv(plan, fps, paths, BASE)).toEqual(expected);
    // The prefix is what comes before the base PATH: a server's own PATH goes after it unchanged.
    const prefix = activationPathPrefix(plan, fps, paths);
    expect([...prefix, BASE].join(':')).toBe(expected.PATH);
    expect(prefix.every((dir) => !dir.includes(':'))).toBe(true);
  });

  it('adds the CA variables when a bundle is staged', () => {
    const env = activationEnv(null, { python: null, node: null }, { ...paths, caBundle: '/box/id-3/ca.pem' }, BASE);
    expect(env).toEqual({
      PATH: BASE,
      PIP_CERT: '/box/id-3/ca.pem',
      SSL_CERT_FILE: '/box/id-3/ca.pem',
      REQUESTS_CA_BUNDLE: '/box/id-3/ca.pem',
      NODE_OPTIONS: '--use-openssl-ca',
      npm_config_cafile: '/box/id-3/ca.pem',
    });
  });
});
