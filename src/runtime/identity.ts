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
/** Default per-uid process-count limit (RLIMIT_NPROC), so one tenant's fork bomb stays its own. */
export const DEFAULT_NPROC_PER_IDENTITY = 128;
export const DEFAULT_NOFILE_PER_IDENTITY = 4096;

/** Builds the identity of `slot`; the folder name carries a random part nobody else can guess. */
export function identityForSlot(slot: number, token: string = randomBytes(8).toString('hex')): Identity {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`slot out of range: ${slot}`);
  const uid = SLOT_UID_BASE + slot;
  const root = `${IDENTITY_PARENT}/s${slot}-${token}`;
  return { slot, uid, gid: uid, root, home: `${root}/home`, tmp: `${root}/tmp`, workspace: `${root}/workspace` };
}

/** The environment every process of an identity gets (HOME, TMPDIR, …); caller env is merged over it. */
export function identityEnv(identity: Identity): Record<string, string> {
  return {
    HOME: identity.home,
    TMPDIR: identity.tmp,
    TMP: identity.tmp,
    TEMP: identity.tmp,
    XDG_CACHE_HOME: `${identity.root}/cache`,
    npm_config_cache: `${identity.root}/cache/npm`,
    PIP_CACHE_DIR: `${identity.root}/cache/pip`,
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  };
}
