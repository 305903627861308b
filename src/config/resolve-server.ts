/** Merges the global `box` settings with a server's own and resolves paths against the config folder. */
import { isAbsolute, resolve } from 'node:path';
import type { InstallOptions } from '../install/detect-install.js';
import { DEFAULT_INSTALL_TIMEOUT_MS } from '../install/prepare-workspace.js';
import { resolveProfile } from '../runtime/profile.js';
import type { SessionProfile } from '../runtime/types.js';
import { DEFAULT_STAGE_LIMITS, type StageLimits } from '../workspace/walk-folder.js';
import type { GlobalBoxOptions, ServerDefinition } from './schema.js';

export interface RestartSettings {
  maxRestarts: number;
  windowMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  healthyAfterMs: number;
}

export interface ResolvedServer {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  /** Absolute host folder from box.hostPath, or undefined (then inferred from the command line). */
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
  disabled: boolean;
}

export const DEFAULT_RESTART: RestartSettings = { maxRestarts: 5, windowMs: 10 * 60_000, backoffInitialMs: 1000, backoffMaxMs: 60_000, healthyAfterMs: 5 * 60_000 };

export function resolveServer(name: string, def: ServerDefinition, global: GlobalBoxOptions, configDir: string): ResolvedServer {
  const own = def.box ?? {};
  const pick = <K extends keyof GlobalBoxOptions & keyof typeof own>(key: K): (typeof own)[K] | GlobalBoxOptions[K] => (own[key] !== undefined ? own[key] : global[key]);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(configDir, p));
  const ca = pick('caCertsFile');
  const restart = { ...global.restart, ...own.restart };
  const limits = { ...global.stageLimits, ...own.stageLimits };
  return {
    name,
    command: def.command,
    args: def.args ?? [],
    env: def.env ?? {},
    cwd: def.cwd,
    hostPath: own.hostPath === undefined ? undefined : abs(own.hostPath),
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
    installTimeoutMs: (pick('installTimeoutSec') ?? DEFAULT_INSTALL_TIMEOUT_MS / 1000) * 1000,
    startupTimeoutMs: (pick('startupTimeoutSec') ?? 120) * 1000,
    toolTimeoutMs: (pick('toolTimeoutSec') ?? 60) * 1000,
    pingIntervalMs: (pick('pingIntervalSec') ?? 30) * 1000,
    recycleAfterTimeouts: pick('recycleAfterTimeouts') ?? 3,
    restart: {
      maxRestarts: restart.maxRestarts ?? DEFAULT_RESTART.maxRestarts,
      windowMs: restart.windowSec === undefined ? DEFAULT_RESTART.windowMs : restart.windowSec * 1000,
      backoffInitialMs: restart.backoffInitialMs ?? DEFAULT_RESTART.backoffInitialMs,
      backoffMaxMs: restart.backoffMaxMs ?? DEFAULT_RESTART.backoffMaxMs,
      healthyAfterMs: restart.healthyAfterSec === undefined ? DEFAULT_RESTART.healthyAfterMs : restart.healthyAfterSec * 1000,
    },
    processLimit: pick('processLimit'),
    disabled: def.disabled === true,
  };
}
