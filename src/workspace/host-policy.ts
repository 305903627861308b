/**
 * Which host folders may be staged: after `realpath`, the folder must lie inside an allowed root
 * (never be the root itself) and must not be `/`, a system folder, a home folder itself, or hold
 * the Docker socket. When a server is added, `checkFolderRules` also refuses a folder that holds
 * the config or state folder, or overlaps another server's folder.
 * Violations are BoxErrors in phase workspace_stage that name the path and the rule.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { BoxError } from '../errors/box-error.js';

/** Never staged, nor anything below them. The one deny-list (the CLI's doctor uses it too). */
export const SYSTEM_DIRS: readonly string[] = [
  '/etc',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/run',
  '/var/run',
  '/var/lib/docker',
];
/** Never staged themselves (their subfolders may be, when under an allowed root). */
export const EXACT_DENIED: readonly string[] = [
  '/',
  '/home',
  '/root',
  '/Users',
  '/tmp',
  '/var',
  '/usr',
  '/opt',
  '/srv',
  '/mnt',
  '/media',
];
const DOCKER_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock'];

/**
 * Whether the deny-list refuses the folder `real` (a realpath): `below` says whether everything
 * under it is refused too (a system folder) or only the folder itself. Null when it is not listed.
 */
export function deniedFolder(real: string): { rule: string; below: boolean } | null {
  if (EXACT_DENIED.includes(real)) return { rule: `${real} itself is never staged`, below: false };
  for (const dir of SYSTEM_DIRS)
    if (real === dir || real.startsWith(dir + sep))
      return { rule: `it is inside the system folder ${dir}`, below: true };
  return null;
}

export interface HostPolicy {
  /** Folders under which server folders may live (realpath'd before comparing). */
  allowedRoots: string[];
}

/** Checks `path` and returns its realpath. */
export function checkHostPolicy(path: string, policy: HostPolicy): string {
  const deny = (rule: string, extra: Record<string, unknown> = {}): never => {
    throw new BoxError(
      'HOST_PATH_DENIED',
      'workspace_stage',
      `Host folder ${JSON.stringify(path)} is not allowed: ${rule}`,
      {
        details: { path, rule, ...extra },
      },
    );
  };
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return deny('it does not exist');
  }
  if (!statSync(real).isDirectory()) deny('it is not a folder');
  const listed = deniedFolder(real);
  if (listed !== null) deny(listed.rule);
  for (const home of homeFolders())
    if (real === home) deny(`it is the home folder ${home}; use a project folder inside it`);
  for (const socket of dockerSockets()) {
    if (socket.startsWith(real + sep)) deny(`it holds the Docker socket ${socket}`);
  }
  const roots = policy.allowedRoots.map((r) => realpathOr(r));
  const rootItself = roots.findIndex((root) => root === real);
  if (rootItself >= 0)
    deny(`it is the allowed root ${JSON.stringify(policy.allowedRoots[rootItself])} itself; stage a folder inside it`);
  if (!roots.some((root) => real === root || real.startsWith(root === sep ? sep : root + sep))) {
    deny(
      'it is not under an allowed root ' +
        `(box.allowedRoots: ${policy.allowedRoots.map((r) => JSON.stringify(r)).join(', ') || 'none'})`,
      { allowedRoots: policy.allowedRoots },
    );
  }
  return real;
}

export interface FolderRules {
  allowedRoots: string[];
  /** Folders a server folder may never be or hold (the config folder, the state folder). */
  protectedFolders: { path: string; what: string }[];
  /** The folders of the servers already added. */
  otherServers: { name: string; folder: string }[];
}

/**
 * The rules checked when a server is added (they need the supervisor's view): the folder is not an
 * allowed root itself, does not hold the config or state folder, and neither holds, equals nor lies
 * inside another server's folder. Paths are compared after realpath where they exist.
 */
export function checkFolderRules(path: string, rules: FolderRules): void {
  const deny = (rule: string, extra: Record<string, unknown> = {}): never => {
    throw new BoxError(
      'HOST_PATH_DENIED',
      'workspace_stage',
      `Host folder ${JSON.stringify(path)} is not allowed: ${rule}`,
      { details: { path, rule, ...extra } },
    );
  };
  const real = realpathNear(path);
  const within = (inner: string, outer: string): boolean =>
    inner === outer || inner.startsWith(outer === sep ? sep : outer + sep);
  rules.allowedRoots.forEach((root) => {
    if (real === realpathNear(root))
      deny(`it is the allowed root ${JSON.stringify(root)} itself; stage a folder inside it`);
  });
  for (const { path: folder, what } of rules.protectedFolders) {
    if (within(realpathNear(folder), real)) deny(`it holds ${what} ${folder}, which is never staged`);
  }
  for (const other of rules.otherServers) {
    const theirs = realpathNear(other.folder);
    if (within(real, theirs) || within(theirs, real))
      deny(
        `it overlaps the folder of server ${JSON.stringify(other.name)} (${other.folder}); ` +
          'each server stages only its own folder',
        { server: other.name },
      );
  }
}

/** The realpath of `path`, or of its nearest existing ancestor joined with the rest (a state folder not made yet). */
function realpathNear(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(realpathNear(parent), basename(absolute));
  }
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function homeFolders(): string[] {
  const homes = new Set<string>([realpathOr(homedir())]);
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const home = line.split(':')[5];
      if (home !== undefined && home.startsWith('/home/')) homes.add(realpathOr(home));
    }
  } catch {
    // no passwd: the current user's home is still checked
  }
  return [...homes];
}

function dockerSockets(): string[] {
  const sockets = [...DOCKER_SOCKETS];
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://') === true) sockets.push(host.slice('unix://'.length));
  return sockets.flatMap((s) => [s, realpathOr(s)]);
}
