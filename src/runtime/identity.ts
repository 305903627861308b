/**
 * Identities inside a session: one uid/gid per managed server ("slot"), kept in step with
 * images/sandbox/setup-users.sh, which adds passwd entries for exactly this range.
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from './types.js';

/** PID 1 of a session runs as this uid; it never runs tenant code. */
export const SESSION_UID = 10001;
export const SLOT_UID_BASE = 100000;
export const SLOT_COUNT = 1000;
/** Each tenant creates its own folder here (mode 1733: nobody can list or remove another's). */
export const IDENTITY_PARENT = '/workspace/.mcp';
export { DEFAULT_NOFILE_PER_IDENTITY, DEFAULT_NPROC_PER_IDENTITY } from '../defaults.js';

/**
 * The layout of an identity's root (`<IDENTITY_PARENT>/s<slot>-<token>/`), the one description of
 * it: `home`, `tmp`, `cache` (npm, pip), `deps` (installed dependencies by fingerprint), and
 * `workspace`, a symlink to the current staged generation `ws.<gen>`.
 */
export const IDENTITY_LAYOUT = {
  home: 'home',
  tmp: 'tmp',
  cache: 'cache',
  deps: 'deps',
  workspace: 'workspace',
  /** A staged generation is `<root>/ws.<gen>`; the first (empty) one is `ws.init`. */
  generationPrefix: 'ws.',
  initialGeneration: 'init',
} as const;

/** The folders made under an identity's root when its slot is taken. */
export const IDENTITY_SUBDIRS = [
  IDENTITY_LAYOUT.home,
  IDENTITY_LAYOUT.tmp,
  IDENTITY_LAYOUT.cache,
  IDENTITY_LAYOUT.deps,
] as const;

/** Absolute paths of an identity root's parts. */
export function identityPaths(root: string): {
  root: string;
  home: string;
  tmp: string;
  cache: string;
  deps: string;
  workspace: string;
} {
  return {
    root,
    home: `${root}/${IDENTITY_LAYOUT.home}`,
    tmp: `${root}/${IDENTITY_LAYOUT.tmp}`,
    cache: `${root}/${IDENTITY_LAYOUT.cache}`,
    deps: `${root}/${IDENTITY_LAYOUT.deps}`,
    workspace: `${root}/${IDENTITY_LAYOUT.workspace}`,
  };
}

/** The folder of staged generation `gen` (`<root>/ws.<gen>`). */
export const generationFolder = (root: string, gen: string | number): string =>
  `${root}/${IDENTITY_LAYOUT.generationPrefix}${gen}`;

/** Builds the identity of `slot`; the folder name carries a random part nobody else can guess. */
export function identityForSlot(slot: number, token: string = randomBytes(8).toString('hex')): Identity {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`slot out of range: ${slot}`);
  const uid = SLOT_UID_BASE + slot;
  const { root, home, tmp, workspace } = identityPaths(`${IDENTITY_PARENT}/s${slot}-${token}`);
  return { slot, uid, gid: uid, root, home, tmp, workspace };
}

/** The environment every process of an identity gets (HOME, TMPDIR, …); caller env is merged over it. */
export function identityEnv(identity: Identity): Record<string, string> {
  const { cache } = identityPaths(identity.root);
  return {
    HOME: identity.home,
    TMPDIR: identity.tmp,
    TMP: identity.tmp,
    TEMP: identity.tmp,
    XDG_CACHE_HOME: cache,
    npm_config_cache: `${cache}/npm`,
    PIP_CACHE_DIR: `${cache}/pip`,
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  };
}
