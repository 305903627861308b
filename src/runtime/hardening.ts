/**
 * The hardening self-check: a probe that runs inside a session and reports what a process there
 * actually got (capabilities, no-new-privileges, seccomp, uid, writable rootfs, limits, Docker
 * socket), and the pure evaluation of that report against the profile. A session that fails it is
 * refused (BRIEF §3).
 */
import type { SessionProfile } from './types.js';

export const HARDENING_PROBE_SCRIPT = [
  'grep -E "^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):" /proc/self/status | tr -d "\\t" | sed "s/:/=/"',
  'echo "uid=$(id -u)"',
  'if touch /.mcp-box-probe 2>/dev/null; then echo rootfs=rw; rm -f /.mcp-box-probe; else echo rootfs=ro; fi',
  'if [ -e /var/run/docker.sock ] || [ -e /run/docker.sock ]; ' +
    'then echo docker_sock=present; else echo docker_sock=absent; fi',
  'echo "pids_max=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max 2>/dev/null)"',
  'echo "memory_max=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || ' +
    'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)"',
].join('; ');

/** The keys HARDENING_PROBE_SCRIPT prints whatever the container is like: without them the probe did not finish. */
const ALWAYS_PRINTED = ['uid', 'rootfs', 'docker_sock', 'pids_max', 'memory_max'] as const;

/**
 * Whether a probe's output is whole. An incomplete one (the exec timed out or was cut off) says nothing about the
 * container: it is a reason to probe again, not a verdict that the container is unsafe.
 */
export function probeComplete(output: string): boolean {
  const values = parseProbeOutput(output);
  return ALWAYS_PRINTED.every((key) => values[key] !== undefined);
}

export interface HardeningReport {
  values: Record<string, string>;
  failures: string[];
  ok: boolean;
}

export function parseProbeOutput(output: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return values;
}

export function evaluateHardening(output: string, profile: SessionProfile): HardeningReport {
  const values = parseProbeOutput(output);
  const failures: string[] = [];
  const zeroCaps = (name: string): void => {
    const v = values[name];
    if (v === undefined || !/^0+$/.test(v))
      failures.push(`${name} is ${v ?? 'unknown'}, expected all zero (CapDrop ALL)`);
  };
  zeroCaps('CapEff');
  zeroCaps('CapPrm');
  zeroCaps('CapBnd');
  if (values.NoNewPrivs !== '1') failures.push(`NoNewPrivs is ${values.NoNewPrivs ?? 'unknown'}, expected 1`);
  if (values.Seccomp !== '2') failures.push(`Seccomp is ${values.Seccomp ?? 'unknown'}, expected 2 (filter)`);
  if (values.uid === undefined || !/^\d+$/.test(values.uid) || values.uid === '0')
    failures.push(`process runs as uid ${values.uid ?? 'unknown'}, expected non-root`);
  if (profile.readOnlyRootfs && values.rootfs !== 'ro')
    failures.push('root filesystem is writable, expected read-only');
  if (values.docker_sock !== 'absent') failures.push('a Docker socket is visible inside the sandbox');
  if (values.pids_max !== String(profile.pidsLimit))
    failures.push(`pids limit is ${values.pids_max || 'unset'}, expected ${profile.pidsLimit}`);
  const memory = String(profile.memoryMb * 1024 * 1024);
  if (values.memory_max !== memory)
    failures.push(`memory limit is ${values.memory_max || 'unset'}, expected ${memory}`);
  return { values, failures, ok: failures.length === 0 };
}
