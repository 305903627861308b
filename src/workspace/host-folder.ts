/**
 * Which host folder belongs to a server, and how its command line looks inside the sandbox.
 *
 * The folder is `box.hostPath` (relative to the config file's folder; '' = no folder) or, when absent, inferred
 * from absolute paths in `command`/`args` that exist on the host (system paths such as
 * `/usr/bin/python3` or an `/etc/...` argument are not taken as hints). A `…/.venv/bin/python` style
 * command stands for its project root, and is matched on the literal path: a venv's python is a
 * symlink to the base interpreter, so resolving it first would leave the project (LangBot F4).
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { BoxError } from '../errors/box-error.js';
import { SYSTEM_DIRS } from './host-policy.js';

const VENV_DIRS = new Set(['.venv', 'venv', 'env', '.env']);
const VENV_BIN_DIRS = new Set(['bin', 'Scripts']);
const VENV_PYTHON = /^python(\d+(\.\d+)?)?(\.exe)?$/;
/**
 * Paths under these never suggest a project folder (`/usr/bin/python3`, an `/etc/...` argument):
 * the folders staging refuses, and where system binaries and libraries live.
 */
const SYSTEM_PREFIXES = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', ...SYSTEM_DIRS, '/var/lib'];

export interface ServerCommand {
  command: string;
  args: string[];
  cwd?: string;
}

export interface FolderResolution {
  /** Absolute host folder (not yet policy-checked), or null when the server has none. */
  hostPath: string | null;
  /** True when the folder came from the command line rather than `box.hostPath`. */
  inferred: boolean;
}

export function resolveHostFolder(
  def: ServerCommand & { hostPath?: string | undefined },
  configDir: string,
): FolderResolution {
  // '' is a server with no folder whose folder must not be inferred (added through the API, or nothing found when
  // it was added).
  if (def.hostPath === '') return { hostPath: null, inferred: false };
  if (def.hostPath !== undefined)
    return { hostPath: stripTrailingSep(resolve(configDir, def.hostPath)), inferred: false };
  const candidates: string[] = [];
  for (const part of [def.command, ...def.args]) {
    if (!isAbsolute(part) || !existsSync(part)) continue;
    const literal = stripTrailingSep(normalize(part));
    if (SYSTEM_PREFIXES.some((prefix) => literal === prefix || literal.startsWith(prefix + sep))) continue;
    let folder = isDirectory(literal) ? literal : dirname(literal);
    folder = unwrapVenv(folder);
    candidates.push(folder);
  }
  if (candidates.length === 0) return { hostPath: null, inferred: true };
  const common = commonPath(candidates);
  return { hostPath: common === sep || common === '' ? null : common, inferred: true };
}

/** `/p/.venv/bin` → `/p`; anything else unchanged. */
export function unwrapVenv(folder: string): string {
  const parts = folder.split(sep);
  const bin = parts.at(-1);
  const venv = parts.at(-2);
  if (bin !== undefined && venv !== undefined && VENV_BIN_DIRS.has(bin) && VENV_DIRS.has(venv))
    return parts.slice(0, -2).join(sep) || sep;
  return folder;
}

export function commonPath(paths: string[]): string {
  const split = paths.map((p) => p.split(sep));
  const first = split[0] ?? [];
  let n = 0;
  while (n < first.length && split.every((parts) => parts[n] === first[n])) n++;
  return first.slice(0, n).join(sep) || sep;
}

/**
 * Rewrites the command, args and cwd that point into `hostPath` to their paths under
 * `containerDir`; a venv python of the folder becomes `python` (the sandbox's own venv is on PATH).
 * Everything else — other args, env values — is left alone.
 */
export function rewriteForContainer(
  def: ServerCommand,
  hostPath: string,
  containerDir: string,
): Required<ServerCommand> {
  const hostReal = safeRealpath(hostPath) ?? hostPath;
  const mapPath = (value: string): string | null => {
    if (!isAbsolute(value)) return null;
    const literal = normalize(value);
    for (const root of [hostPath, hostReal]) {
      if (literal === root) return containerDir;
      if (literal.startsWith(root + sep)) return join(containerDir, relative(root, literal)).split(sep).join('/');
    }
    const real = safeRealpath(literal);
    if (real !== null && (real === hostReal || real.startsWith(hostReal + sep)))
      return join(containerDir, relative(hostReal, real)).split(sep).join('/');
    return null;
  };
  const venvPython =
    [hostPath, hostReal].some((root) => isVenvPython(def.command, root)) || isVenvPythonOfFolder(def.command, hostReal);
  const command = venvPython ? 'python' : (mapPath(def.command) ?? def.command);
  return {
    command,
    args: def.args.map((a) => mapPath(a) ?? a),
    cwd: def.cwd === undefined ? containerDir : containerCwd(def.cwd, mapPath, containerDir),
  };
}

/**
 * The working directory inside the sandbox: always in the server's own folder (never an absolute path it does not
 * map).
 */
function containerCwd(cwd: string, mapPath: (value: string) => string | null, containerDir: string): string {
  if (!isAbsolute(cwd)) {
    const rel = normalize(cwd);
    if (rel !== '..' && !rel.startsWith('..' + sep)) return join(containerDir, rel).split(sep).join('/');
  }
  const mapped = mapPath(cwd);
  if (mapped !== null) return mapped;
  throw new BoxError(
    'HOST_PATH_DENIED',
    'workspace_stage',
    `cwd ${JSON.stringify(cwd)} is outside the server's folder`,
    { details: { cwd, rule: 'cwd must lie inside the server folder' } },
  );
}

/** `<hostPath>/.venv/bin/python3` (literal path, never resolved). */
export function isVenvPython(command: string, hostPath: string): boolean {
  if (!isAbsolute(command)) return false;
  const literal = normalize(command);
  if (!literal.startsWith(hostPath + sep)) return false;
  const parts = relative(hostPath, literal).split(sep);
  if (parts.length < 3) return false;
  const [name, bin, venv] = [parts.at(-1) ?? '', parts.at(-2) ?? '', parts.at(-3) ?? ''];
  return VENV_PYTHON.test(name) && VENV_BIN_DIRS.has(bin) && VENV_DIRS.has(venv);
}

/** `<x>/.venv/bin/python` where `<x>` (a symlinked alias, say) really is `hostReal`. */
function isVenvPythonOfFolder(command: string, hostReal: string): boolean {
  if (!isAbsolute(command)) return false;
  const literal = normalize(command);
  const projectRoot = dirname(dirname(dirname(literal)));
  if (!isVenvPython(literal, projectRoot)) return false;
  return safeRealpath(projectRoot) === hostReal;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function stripTrailingSep(path: string): string {
  return path.length > 1 && path.endsWith(sep) ? path.slice(0, -1) : path;
}

function safeRealpath(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}
