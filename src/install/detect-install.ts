/**
 * Pure install planning: which project kinds a staged folder is, how to install each, what the
 * dependency fingerprint covers, and the environment a started server gets. No I/O here; table
 * tested in detect-install.test.ts.
 *
 * Python: `requirements.txt` (else the `requirements*.txt` that are not dev/test/doc/lint files)
 * wins over `pyproject.toml`/`setup.py`/`setup.cfg`, which are installed as a package (`pip install
 * .`, its whole source in the fingerprint). `uv.lock` uses `uv sync --frozen` when the image has uv,
 * else the pyproject route. `poetry.lock` projects go the pyproject route (pip builds them through
 * their declared backend). Node: `npm ci` with `package-lock.json`/`npm-shrinkwrap.json`,
 * `pnpm install --frozen-lockfile` / `yarn install --frozen-lockfile` when those tools exist,
 * `npm install` with no lockfile.
 */
import { shellQuote } from '../util/shell-quote.js';
import { createHash } from 'node:crypto';
import { BoxError } from '../errors/box-error.js';
import { checkRequirements } from './requirements.js';
import { identityPaths } from '../runtime/identity.js';

export interface ToolVersions {
  python: string | null;
  pip: string | null;
  node: string | null;
  npm: string | null;
  uv: string | null;
  pnpm: string | null;
  yarn: string | null;
}

export interface InstallOptions {
  indexUrl?: string | undefined;
  extraIndexUrls?: string[] | undefined;
  /** Paths (relative to the server folder) or URLs of wheel folders. */
  findLinks?: string[] | undefined;
  trustedHosts?: string[] | undefined;
  noIndex?: boolean | undefined;
  npmRegistry?: string | undefined;
}

export type PythonMode = 'requirements' | 'package' | 'uv';
export type NodeTool = 'npm-ci' | 'npm-install' | 'pnpm' | 'yarn';

export interface InstallPlan {
  python: { mode: PythonMode; manifests: string[]; requirements: string[] } | null;
  node: { tool: NodeTool; manifests: string[] } | null;
  notes: string[];
}

export interface FolderView {
  /** Root-level names that were staged. */
  rootNames: Set<string>;
  /** Text of a staged file, or null when absent. */
  read(rel: string): string | null;
}

const PY_PACKAGE_FILES = ['pyproject.toml', 'setup.py', 'setup.cfg'];
/** Name parts (between - _ . in requirements-<parts>.txt) that mark files not needed at run time. */
const NON_RUNTIME_PARTS = new Set([
  'dev',
  'develop',
  'test',
  'tests',
  'testing',
  'doc',
  'docs',
  'lint',
  'ci',
  'typing',
  'bench',
  'benchmark',
  'benchmarks',
]);
const isNonRuntimeRequirements = (name: string): boolean =>
  name
    .replace(/^requirements/, '')
    .replace(/\.txt$/, '')
    .toLowerCase()
    .split(/[-_.]/)
    .some((part) => NON_RUNTIME_PARTS.has(part));

export function detectInstallPlan(folder: FolderView, tools: ToolVersions): InstallPlan | null {
  const notes: string[] = [];
  const has = (name: string): boolean => folder.rootNames.has(name);
  let python: InstallPlan['python'] = null;
  const requirementFiles = [...folder.rootNames].filter((n) => /^requirements.*\.txt$/.test(n)).sort();
  const chosen = has('requirements.txt')
    ? ['requirements.txt']
    : requirementFiles.filter((n) => !isNonRuntimeRequirements(n));
  if (chosen.length > 0) {
    const manifests = new Set<string>(requirementFiles);
    const checked = new Set<string>();
    const queue = [...chosen];
    for (let guard = 0; queue.length > 0 && guard < 64; guard++) {
      const rel = queue.shift() as string;
      if (checked.has(rel)) continue;
      checked.add(rel);
      const text = folder.read(rel);
      if (text === null)
        throw new BoxError('INVALID_REQUIREMENT', 'dep_install', `${rel} is referenced but was not staged`, {
          details: { file: rel },
        });
      manifests.add(rel);
      // Every included file is checked too, root-level requirement files included.
      for (const inc of checkRequirements(rel, text).includes) if (!checked.has(inc)) queue.push(inc);
    }
    python = { mode: 'requirements', manifests: [...manifests].sort(), requirements: chosen };
    if (PY_PACKAGE_FILES.some(has))
      notes.push(`${chosen.join(', ')} found: installing it, not the package in pyproject/setup files`);
  } else if (has('uv.lock') && has('pyproject.toml') && tools.uv !== null) {
    python = { mode: 'uv', manifests: ['pyproject.toml', 'uv.lock'], requirements: [] };
  } else if (PY_PACKAGE_FILES.some(has)) {
    const manifests = [...PY_PACKAGE_FILES, 'uv.lock', 'poetry.lock'].filter(has);
    python = { mode: 'package', manifests, requirements: [] };
    if (has('uv.lock')) notes.push('uv.lock found but the image has no uv: installing the pyproject package with pip');
    if (has('poetry.lock'))
      notes.push(
        'poetry.lock found: installing the package with pip through its build backend (the lock is not enforced)',
      );
  }
  if (python !== null && tools.python === null) {
    throw new BoxError(
      'INSTALL_FAILED',
      'dep_install',
      'This is a Python project but the sandbox image has no python3',
      { details: { manifests: python.manifests } },
    );
  }

  let node: InstallPlan['node'] = null;
  if (has('package.json')) {
    const lock = ['package-lock.json', 'npm-shrinkwrap.json'].find(has);
    if (lock !== undefined) node = { tool: 'npm-ci', manifests: ['package.json', lock] };
    else if (has('pnpm-lock.yaml')) {
      if (tools.pnpm === null)
        throw new BoxError(
          'INSTALL_FAILED',
          'dep_install',
          'pnpm-lock.yaml found but the sandbox image has no pnpm; add pnpm to the image or commit a package-lock.json',
        );
      node = { tool: 'pnpm', manifests: ['package.json', 'pnpm-lock.yaml'] };
    } else if (has('yarn.lock')) {
      if (tools.yarn === null)
        throw new BoxError(
          'INSTALL_FAILED',
          'dep_install',
          'yarn.lock found but the sandbox image has no yarn; add yarn to the image or commit a package-lock.json',
        );
      node = { tool: 'yarn', manifests: ['package.json', 'yarn.lock'] };
    } else {
      node = { tool: 'npm-install', manifests: ['package.json'] };
      notes.push(
        'package.json has no lockfile: `npm install` resolves versions afresh ' +
          '(commit a package-lock.json for reproducible installs)',
      );
    }
    if (tools.node === null)
      throw new BoxError('INSTALL_FAILED', 'dep_install', 'This is a Node project but the sandbox image has no node');
  }
  return python === null && node === null ? null : { python, node, notes };
}

/**
 * Fingerprints of the Python and Node parts: manifests and lockfiles (for a Python package, its
 * whole source), the interpreter and installer versions, and the install options.
 */
export function installFingerprints(
  plan: InstallPlan,
  hashes: Map<string, string>,
  tools: ToolVersions,
  opts: InstallOptions,
): { python: string | null; node: string | null } {
  const digest = (parts: unknown[]): string =>
    createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
  const filesOf = (names: string[]): [string, string][] => names.map((n) => [n, hashes.get(n) ?? 'missing']);
  const python =
    plan.python === null
      ? null
      : digest([
          'py1',
          plan.python.mode,
          plan.python.requirements,
          plan.python.mode === 'package'
            ? [...hashes.entries()].sort(([a], [b]) => a.localeCompare(b))
            : filesOf(plan.python.manifests),
          tools.python,
          tools.pip,
          tools.uv,
          [
            opts.indexUrl ?? null,
            opts.extraIndexUrls ?? [],
            opts.findLinks ?? [],
            opts.trustedHosts ?? [],
            opts.noIndex === true,
          ],
        ]);
  const node =
    plan.node === null
      ? null
      : digest([
          'node1',
          plan.node.tool,
          filesOf(plan.node.manifests),
          tools.node,
          tools.npm,
          tools.pnpm,
          tools.yarn,
          opts.npmRegistry ?? null,
        ]);
  return { python, node };
}

export interface InstallPaths {
  /** The identity's private root. */
  root: string;
  /** The stable workspace path (a symlink to the current staged generation). */
  workspace: string;
  /** CA bundle inside the sandbox, when configured. */
  caBundle: string | null;
}

export const pythonDepsDir = (paths: InstallPaths, fp: string): string => `${identityPaths(paths.root).deps}/py-${fp}`;
export const nodeDepsDir = (paths: InstallPaths, fp: string): string => `${identityPaths(paths.root).deps}/node-${fp}`;

/** The sh script that installs the missing parts (`fps` null = already installed). */
export function installScript(
  plan: InstallPlan,
  fps: { python: string | null; node: string | null },
  paths: InstallPaths,
): string {
  const q = shellQuote;
  const lines = ['set -eu', `cd ${q(paths.workspace)}`];
  if (plan.python !== null && fps.python !== null) {
    const dir = pythonDepsDir(paths, fps.python);
    lines.push(
      `D=${q(dir)}`,
      'rm -rf "$D"',
      'mkdir -p "$D"',
      'echo "mcp-box: creating a virtualenv"',
      'python3 -m venv "$D/venv"',
    );
    if (plan.python.mode === 'requirements') {
      for (const req of plan.python.requirements)
        lines.push(`echo ${q(`mcp-box: pip install -r ${req}`)}`, `"$D/venv/bin/python" -m pip install -r ${q(req)}`);
    } else if (plan.python.mode === 'uv') {
      lines.push('echo "mcp-box: uv sync --frozen"', 'UV_PROJECT_ENVIRONMENT="$D/venv" uv sync --frozen --no-dev');
    } else {
      lines.push('echo "mcp-box: pip install ."', '"$D/venv/bin/python" -m pip install .');
    }
    lines.push(
      'touch "$D/.done"',
      `for old in ${q(identityPaths(paths.root).deps)}/py-*; do [ "$old" = "$D" ] || rm -rf "$old"; done`,
    );
  }
  if (plan.node !== null && fps.node !== null) {
    const dir = nodeDepsDir(paths, fps.node);
    const command = {
      'npm-ci': 'npm ci',
      'npm-install': 'npm install --no-package-lock',
      pnpm: 'pnpm install --frozen-lockfile',
      yarn: 'yarn install --frozen-lockfile',
    }[plan.node.tool];
    lines.push(
      `N=${q(dir)}`,
      'rm -rf "$N" node_modules',
      'mkdir -p "$N"',
      `echo ${q(`mcp-box: ${command}`)}`,
      command,
      'mv node_modules "$N/node_modules"',
      `ln -s "../deps/node-${fps.node}/node_modules" node_modules`,
      'touch "$N/.done"',
      `for old in ${q(identityPaths(paths.root).deps)}/node-*; do [ "$old" = "$N" ] || rm -rf "$old"; done`,
    );
  }
  return lines.join('\n');
}

/** Environment for the install exec: non-interactive, no progress bars, per-server caches, index and CA settings. */
export function installEnv(paths: InstallPaths, opts: InstallOptions): Record<string, string> {
  const env: Record<string, string> = {
    PIP_NO_INPUT: '1',
    PIP_PROGRESS_BAR: 'off',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PIP_NO_COLOR: '1',
    PIP_TIMEOUT: '30',
    PIP_RETRIES: '2',
    PIP_CACHE_DIR: `${identityPaths(paths.root).cache}/pip`,
    npm_config_cache: `${identityPaths(paths.root).cache}/npm`,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_progress: 'false',
    npm_config_color: 'false',
    CI: 'true',
  };
  if (opts.indexUrl !== undefined) env.PIP_INDEX_URL = opts.indexUrl;
  if (opts.extraIndexUrls !== undefined && opts.extraIndexUrls.length > 0)
    env.PIP_EXTRA_INDEX_URL = opts.extraIndexUrls.join(' ');
  if (opts.findLinks !== undefined && opts.findLinks.length > 0) env.PIP_FIND_LINKS = opts.findLinks.join(' ');
  if (opts.trustedHosts !== undefined && opts.trustedHosts.length > 0)
    env.PIP_TRUSTED_HOST = opts.trustedHosts.join(' ');
  if (opts.noIndex === true) env.PIP_NO_INDEX = '1';
  if (opts.npmRegistry !== undefined) env.npm_config_registry = opts.npmRegistry;
  return { ...env, ...caEnv(paths) };
}

/** Environment a started server gets: its venv and node bins on PATH, the CA bundle. Nothing printed. */
/**
 * The environment of a server whose dependencies are installed: CA and index settings, the venv,
 * and PATH = the install's bins (`activationPathPrefix`) before `basePath`.
 */
export function activationEnv(
  plan: InstallPlan | null,
  fps: { python: string | null; node: string | null },
  paths: InstallPaths,
  basePath: string,
  opts: InstallOptions = {},
): Record<string, string> {
  // Servers that install at run time (`npx -y …`, `pip` from a server) use the same index settings.
  const env: Record<string, string> = {
    ...caEnv(paths),
    ...(opts.npmRegistry === undefined ? {} : { npm_config_registry: opts.npmRegistry }),
  };
  if (opts.indexUrl !== undefined) env.PIP_INDEX_URL = opts.indexUrl;
  if (plan?.python != null && fps.python !== null) env.VIRTUAL_ENV = `${pythonDepsDir(paths, fps.python)}/venv`;
  env.PATH = [...activationPathPrefix(plan, fps, paths), basePath].join(':');
  return env;
}

/** The folders an install puts in front of PATH: the venv's bin, then node_modules/.bin. */
export function activationPathPrefix(
  plan: InstallPlan | null,
  fps: { python: string | null; node: string | null },
  paths: InstallPaths,
): string[] {
  const path: string[] = [];
  if (plan?.python != null && fps.python !== null) path.push(`${pythonDepsDir(paths, fps.python)}/venv/bin`);
  if (plan?.node != null) path.push(`${paths.workspace}/node_modules/.bin`);
  return path;
}

/**
 * The staged bundle (the image's roots and `box.caCertsFile`) for every TLS stack in the image. Node reads it through
 * OpenSSL (`--use-openssl-ca` + `SSL_CERT_FILE`), loaded on its first TLS connection: `NODE_EXTRA_CA_CERTS` would make
 * the image's Node 18 parse the whole bundle at every start (~80 ms of each cold start, measured by the relay bench).
 */
function caEnv(paths: InstallPaths): Record<string, string> {
  if (paths.caBundle === null) return {};
  const ca = paths.caBundle;
  return {
    PIP_CERT: ca,
    SSL_CERT_FILE: ca,
    REQUESTS_CA_BUNDLE: ca,
    NODE_OPTIONS: '--use-openssl-ca',
    npm_config_cafile: ca,
  };
}
