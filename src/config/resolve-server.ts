/**
 * Merges the global `box` settings with a server's own (which may only narrow them: see
 * server-policy.ts) and resolves paths against the config folder: the server's folder is fixed
 * here, when it is added, and its `cwd` must lie inside it.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, normalize, resolve, sep } from 'node:path';
import type { InstallOptions } from '../install/detect-install.js';
import { resolveProfile } from '../runtime/profile.js';
import type { SessionProfile } from '../runtime/types.js';
import type { StageLimits } from '../workspace/walk-folder.js';
import { resolveHostFolder } from '../workspace/host-folder.js';
import type { GlobalBoxOptions, ServerDefinition } from './schema.js';
import {
  DEFAULT_DISK_FILES,
  DEFAULT_DISK_MB,
  DEFAULT_INSTALL_TIMEOUT_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RECYCLE_AFTER_TIMEOUTS,
  DEFAULT_RESTART,
  DEFAULT_STAGE_LIMITS,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_TOOL_TIMEOUT_MS,
  type RestartSettings,
} from '../defaults.js';
import { configError, serverBoxProblems } from './server-policy.js';

export { DEFAULT_RESTART, type RestartSettings } from '../defaults.js';

export interface ResolvedServer {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Env keys the definition marks as secret (besides those whose names say so). */
  secretEnv: string[];
  /** Absolute host path inside `hostPath`, or undefined (the workspace). */
  cwd: string | undefined;
  /**
   * Absolute host folder (box.hostPath, or inferred from the command line when the server was
   * added), or '' when the server has no folder (then nothing is inferred later either).
   */
  hostPath: string | undefined;
  profile: SessionProfile;
  client: 'supervisor' | 'external';
  install: InstallOptions;
  caCertsFile: string | null;
  allowedRoots: string[];
  stageLimits: StageLimits;
  installTimeoutMs: number;
  startupTimeoutMs: number;
  toolTimeoutMs: number;
  pingIntervalMs: number;
  recycleAfterTimeouts: number;
  restart: RestartSettings;
  processLimit: number | undefined;
  /** Quota of the server's folders: bytes on disk (also the largest file, RLIMIT_FSIZE) and entries. */
  disk: { maxBytes: number; maxEntries: number };
  disabled: boolean;
}

export interface ResolveOptions {
  /**
   * Infer the folder from absolute paths in command/args when box.hostPath is absent (default true; false for
   * servers added through the API).
   */
  inferFolder?: boolean;
}

export function resolveServer(
  name: string,
  def: ServerDefinition,
  global: GlobalBoxOptions,
  configDir: string,
  opts: ResolveOptions = {},
): ResolvedServer {
  const problems = serverBoxProblems(name, def.box, global);
  if (problems.length > 0) throw configError(problems);
  const own = def.box ?? {};
  const pick = <K extends keyof GlobalBoxOptions & keyof typeof own>(key: K): (typeof own)[K] | GlobalBoxOptions[K] =>
    own[key] !== undefined ? own[key] : global[key];
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(configDir, p));
  const ca = pick('caCertsFile');
  if (ca != null) checkCaBundle(abs(ca));
  const hostPath =
    own.hostPath !== undefined
      ? abs(own.hostPath)
      : opts.inferFolder === false
        ? ''
        : (resolveHostFolder({ command: def.command, args: def.args ?? [] }, configDir).hostPath ?? '');
  const restart = { ...global.restart, ...own.restart };
  const limits = { ...global.stageLimits, ...own.stageLimits };
  return {
    name,
    command: def.command,
    args: def.args ?? [],
    env: def.env ?? {},
    secretEnv: def.secretEnv ?? [],
    cwd: resolveCwd(name, def.cwd, hostPath),
    hostPath,
    profile: resolveProfile({
      image: pick('image'),
      network: pick('network'),
      cpus: pick('cpus'),
      memoryMb: pick('memoryMb'),
      pidsLimit: pick('pidsLimit'),
      readOnlyRootfs: pick('readOnlyRootfs'),
      tmpfsMb: pick('tmpfsMb'),
    }),
    client: pick('client') ?? 'supervisor',
    install: { ...global.install, ...own.install },
    caCertsFile: ca == null ? null : abs(ca),
    allowedRoots: (global.allowedRoots ?? [configDir]).map(abs),
    stageLimits: { ...DEFAULT_STAGE_LIMITS, ...limits },
    installTimeoutMs: secondsOr(pick('installTimeoutSec'), DEFAULT_INSTALL_TIMEOUT_MS),
    startupTimeoutMs: secondsOr(pick('startupTimeoutSec'), DEFAULT_STARTUP_TIMEOUT_MS),
    toolTimeoutMs: secondsOr(pick('toolTimeoutSec'), DEFAULT_TOOL_TIMEOUT_MS),
    pingIntervalMs: secondsOr(pick('pingIntervalSec'), DEFAULT_PING_INTERVAL_MS),
    recycleAfterTimeouts: pick('recycleAfterTimeouts') ?? DEFAULT_RECYCLE_AFTER_TIMEOUTS,
    restart: {
      maxRestarts: restart.maxRestarts ?? DEFAULT_RESTART.maxRestarts,
      windowMs: secondsOr(restart.windowSec, DEFAULT_RESTART.windowMs),
      backoffInitialMs: restart.backoffInitialMs ?? DEFAULT_RESTART.backoffInitialMs,
      backoffMaxMs: restart.backoffMaxMs ?? DEFAULT_RESTART.backoffMaxMs,
      healthyAfterMs: secondsOr(restart.healthyAfterSec, DEFAULT_RESTART.healthyAfterMs),
    },
    processLimit: pick('processLimit'),
    disk: {
      maxBytes: (pick('diskMb') ?? DEFAULT_DISK_MB) * 1024 * 1024,
      maxEntries: pick('diskFiles') ?? DEFAULT_DISK_FILES,
    },
    disabled: def.disabled === true,
  };
}

/** A config value in seconds as milliseconds, or the default (already in milliseconds). */
const secondsOr = (sec: number | undefined, defaultMs: number): number => (sec === undefined ? defaultMs : sec * 1000);

/** A `cwd` is relative to the server's folder or absolute inside it; never under /proc, never outside. */
function resolveCwd(name: string, cwd: string | undefined, hostPath: string): string | undefined {
  if (cwd === undefined) return undefined;
  const refuse = (why: string): never => {
    throw configError([{ path: `mcpServers.${name}.cwd`, message: `${JSON.stringify(cwd)} ${why}` }]);
  };
  const literal = normalize(cwd);
  if (literal === '/proc' || literal.startsWith('/proc/'))
    refuse("is under /proc; the working directory must be inside the server's folder");
  if (hostPath === '') {
    if (isAbsolute(cwd) || literal.replace(/\/$/, '') !== '.')
      refuse('is refused: this server has no folder, so it runs in its workspace (omit cwd, or ".")');
    return undefined;
  }
  const target = isAbsolute(cwd) ? resolve(literal) : resolve(hostPath, literal);
  if (target !== hostPath && !target.startsWith(hostPath + sep)) refuse(`is outside the server's folder ${hostPath}`);
  return target;
}

/** The operator's CA bundle must be PEM: at least one certificate block (never, say, /proc/self/environ). */
function checkCaBundle(path: string): void {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    throw configError([{ path: 'box.caCertsFile', message: `cannot read ${path}: ${(err as Error).message}` }]);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw configError([
      {
        path: 'box.caCertsFile',
        message: `${path} is not a PEM certificate bundle (no -----BEGIN CERTIFICATE----- block)`,
      },
    ]);
}
