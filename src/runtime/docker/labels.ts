/**
 * Labels on every container and volume mcp-box creates, and the identity of their owner (the
 * supervisor process), so a restarted supervisor can adopt its own sessions and reap what dead
 * owners left behind.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { MCP_BOX_VERSION } from '../../version.js';

export const LABEL_MANAGED = 'mcp-box.managed';
export const LABEL_VERSION = 'mcp-box.version';
export const LABEL_OWNER = 'mcp-box.owner';
export const LABEL_OWNER_HOST = 'mcp-box.owner.host';
export const LABEL_OWNER_BOOT = 'mcp-box.owner.boot';
export const LABEL_OWNER_PID = 'mcp-box.owner.pid';
export const LABEL_OWNER_PID_START = 'mcp-box.owner.pid-start';
export const LABEL_PROFILE_HASH = 'mcp-box.profile';
export const LABEL_SESSION = 'mcp-box.session';
export const LABEL_PERSISTENT = 'mcp-box.persistent';
/** The workspace volume a session container mounts (a replacement session re-attaches its predecessor's). */
export const LABEL_VOLUME = 'mcp-box.volume';
/** Extra label a caller may add (tests mark their resources with it). */
export const LABEL_TAG = 'mcp-box.tag';

/** Who created a resource: enough to tell, later and from another process, whether it still lives. */
export interface Owner {
  id: string;
  host: string;
  bootId: string;
  pid: number;
  /** Start time of `pid` in clock ticks since boot (guards against PID reuse). */
  pidStart: string;
}

export function currentOwner(id: string): Owner {
  return {
    id,
    host: hostname(),
    bootId: readBootId(),
    pid: process.pid,
    pidStart: processStartTicks(process.pid) ?? '',
  };
}

export function ownerLabels(owner: Owner): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_VERSION]: MCP_BOX_VERSION,
    [LABEL_OWNER]: owner.id,
    [LABEL_OWNER_HOST]: owner.host,
    [LABEL_OWNER_BOOT]: owner.bootId,
    [LABEL_OWNER_PID]: String(owner.pid),
    [LABEL_OWNER_PID_START]: owner.pidStart,
  };
}

export type OwnerLiveness = 'alive' | 'dead' | 'unknown';

/**
 * Whether the owner recorded in `labels` still runs. Only decidable on the same host and boot:
 * anything else is 'unknown' (a shared remote engine), which the reaper leaves alone.
 */
export function ownerLiveness(labels: Record<string, string>): OwnerLiveness {
  const host = labels[LABEL_OWNER_HOST];
  const boot = labels[LABEL_OWNER_BOOT];
  const pid = Number(labels[LABEL_OWNER_PID]);
  if (host === undefined || !Number.isInteger(pid) || pid <= 0) return 'unknown';
  if (host !== hostname()) return 'unknown';
  if (boot !== undefined && boot !== '' && boot !== readBootId()) return 'dead';
  const start = processStartTicks(pid);
  if (start === null) return 'dead';
  const recorded = labels[LABEL_OWNER_PID_START];
  if (recorded !== undefined && recorded !== '' && recorded !== start) return 'dead';
  return 'alive';
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Field 22 of /proc/<pid>/stat, or null when the process does not exist. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return afterName[19] ?? null;
  } catch {
    return null;
  }
}
