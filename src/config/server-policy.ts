/**
 * Who owns what (BRIEF §3): the operator writes `box`; a server definition is tenant input and its
 * own `box` may only narrow the operator's settings. Numeric limits may be at most the operator's
 * cap (`box.limits.<field>` when set, else the operator's `box.<field>`, else its default);
 * `readOnlyRootfs` may only turn on; `network` may only turn off (unless
 * `box.allowNetworkOverride`); `image` must be in `box.allowedImages` (default: the operator's
 * image); `processLimit` is at most the server's `pidsLimit`. The CA bundle and the index settings
 * that can carry credentials or redirect trust are the operator's only; `findLinks` must stay
 * inside the server's folder.
 */
import { isAbsolute, normalize } from 'node:path';
import { BoxError } from '../errors/box-error.js';
import {
  DEFAULT_DISK_FILES,
  DEFAULT_DISK_MB,
  DEFAULT_INSTALL_TIMEOUT_MS,
  DEFAULT_NPROC_PER_IDENTITY,
  DEFAULT_PROFILE,
  DEFAULT_STAGE_LIMITS,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_TOOL_TIMEOUT_MS,
} from '../defaults.js';
import type { BoxLimits, GlobalBoxOptions, ServerBoxOptions } from './schema.js';

export interface PolicyProblem {
  path: string;
  message: string;
}

export { DEFAULT_DISK_FILES, DEFAULT_DISK_MB } from '../defaults.js';

type CappedField =
  | 'memoryMb'
  | 'cpus'
  | 'pidsLimit'
  | 'tmpfsMb'
  | 'processLimit'
  | 'diskMb'
  | 'diskFiles'
  | 'installTimeoutSec'
  | 'startupTimeoutSec'
  | 'toolTimeoutSec';

/** The default of each capped field, in the unit of its config field (from defaults.ts). */
const DEFAULTS: Record<CappedField, number> = {
  memoryMb: DEFAULT_PROFILE.memoryMb,
  cpus: DEFAULT_PROFILE.cpus,
  pidsLimit: DEFAULT_PROFILE.pidsLimit,
  tmpfsMb: DEFAULT_PROFILE.tmpfsMb,
  processLimit: DEFAULT_NPROC_PER_IDENTITY,
  diskMb: DEFAULT_DISK_MB,
  diskFiles: DEFAULT_DISK_FILES,
  installTimeoutSec: DEFAULT_INSTALL_TIMEOUT_MS / 1000,
  startupTimeoutSec: DEFAULT_STARTUP_TIMEOUT_MS / 1000,
  toolTimeoutSec: DEFAULT_TOOL_TIMEOUT_MS / 1000,
};

const STAGE_FIELDS = [
  { field: 'maxBytes', limit: 'stageBytes' },
  { field: 'maxFiles', limit: 'stageFiles' },
  { field: 'maxDepth', limit: 'stageDepth' },
] as const satisfies readonly { field: keyof typeof DEFAULT_STAGE_LIMITS; limit: keyof BoxLimits }[];

/** Install settings a server may not set: credentials live in them, or trust (which hosts, which CA). */
const OPERATOR_ONLY_INSTALL = ['indexUrl', 'extraIndexUrls', 'trustedHosts', 'npmRegistry'] as const;

interface Cap {
  value: number;
  /** The config field the cap comes from. */
  from: string;
}

function capOf(field: CappedField, global: GlobalBoxOptions): Cap {
  const limit = global.limits?.[field];
  if (limit !== undefined) return { value: limit, from: `box.limits.${field}` };
  return { value: global[field] ?? DEFAULTS[field], from: `box.${field}` };
}

const above = (path: string, asked: number, cap: Cap): PolicyProblem => ({
  path,
  message: `${asked} is above the operator's cap of ${cap.value} (${cap.from})`,
});

/** What is wrong with server `name`'s own `box`, measured against the operator's `global`. */
export function serverBoxProblems(
  name: string,
  own: ServerBoxOptions | undefined,
  global: GlobalBoxOptions,
): PolicyProblem[] {
  if (own === undefined) return [];
  const at = (field: string): string => `mcpServers.${name}.box.${field}`;
  const problems: PolicyProblem[] = [];
  for (const field of ['image', 'network', 'cpus', 'memoryMb', 'pidsLimit', 'readOnlyRootfs', 'tmpfsMb'] as const) {
    if (own[field] === undefined) continue;
    if (field === 'image') {
      const allowed = global.allowedImages ?? [global.image ?? DEFAULT_PROFILE.image];
      if (!allowed.includes(own.image ?? ''))
        problems.push({
          path: at('image'),
          message:
            `${JSON.stringify(own.image)} is not an allowed image ` +
            `(box.allowedImages: ${allowed.map((i) => JSON.stringify(i)).join(', ')})`,
        });
    } else if (field === 'network') {
      if (
        own.network === 'on' &&
        (global.network ?? DEFAULT_PROFILE.network) === 'off' &&
        global.allowNetworkOverride !== true
      ) {
        problems.push({
          path: at('network'),
          message:
            '"on" is refused: the operator turned the network off (box.network; box.allowNetworkOverride allows it)',
        });
      }
    } else if (field === 'readOnlyRootfs') {
      if (own.readOnlyRootfs === false && (global.readOnlyRootfs ?? DEFAULT_PROFILE.readOnlyRootfs)) {
        problems.push({
          path: at('readOnlyRootfs'),
          message: "false is refused: the operator's root filesystem is read-only (box.readOnlyRootfs)",
        });
      }
    } else {
      const cap = capOf(field, global);
      const asked = own[field];
      if (asked !== undefined && asked > cap.value) problems.push(above(at(field), asked, cap));
    }
  }
  for (const field of ['diskMb', 'diskFiles', 'installTimeoutSec', 'startupTimeoutSec', 'toolTimeoutSec'] as const) {
    const cap = capOf(field, global);
    const asked = own[field];
    if (asked !== undefined && asked > cap.value) problems.push(above(at(field), asked, cap));
  }
  if (own.processLimit !== undefined) {
    // At most the operator's processLimit cap, and never above the pids limit this server runs under.
    const pids: Cap =
      own.pidsLimit !== undefined
        ? { value: own.pidsLimit, from: at('pidsLimit') }
        : { value: global.pidsLimit ?? DEFAULT_PROFILE.pidsLimit, from: 'box.pidsLimit' };
    const limit = capOf('processLimit', global);
    const cap = pids.value < limit.value ? pids : limit;
    if (own.processLimit > cap.value) problems.push(above(at('processLimit'), own.processLimit, cap));
  }
  for (const { field, limit } of STAGE_FIELDS) {
    const asked = own.stageLimits?.[field];
    if (asked === undefined) continue;
    const fromLimits = global.limits?.[limit];
    const cap: Cap =
      fromLimits !== undefined
        ? { value: fromLimits, from: `box.limits.${limit}` }
        : { value: global.stageLimits?.[field] ?? DEFAULT_STAGE_LIMITS[field], from: `box.stageLimits.${field}` };
    if (asked > cap.value) problems.push(above(at(`stageLimits.${field}`), asked, cap));
  }
  if (own.caCertsFile !== undefined)
    problems.push({ path: at('caCertsFile'), message: 'set by the operator only (box.caCertsFile)' });
  for (const field of OPERATOR_ONLY_INSTALL) {
    if (own.install?.[field] !== undefined)
      problems.push({ path: at(`install.${field}`), message: `set by the operator only (box.install.${field})` });
  }
  (own.install?.findLinks ?? []).forEach((link, i) => {
    const rel = normalize(link);
    if (isAbsolute(link) || link.includes('://') || rel === '..' || rel.startsWith('../')) {
      problems.push({
        path: at(`install.findLinks.${i}`),
        message: `${JSON.stringify(link)} must be a relative path inside the server's folder`,
      });
    }
  });
  return problems;
}

/** The operator's own values must sit within its own `box.limits`. */
export function operatorBoxProblems(global: GlobalBoxOptions): PolicyProblem[] {
  const limits = global.limits;
  if (limits === undefined) return [];
  const problems: PolicyProblem[] = [];
  for (const field of Object.keys(DEFAULTS) as CappedField[]) {
    const value = global[field];
    const cap = limits[field];
    if (value !== undefined && cap !== undefined && value > cap)
      problems.push(above(`box.${field}`, value, { value: cap, from: `box.limits.${field}` }));
  }
  for (const { field, limit } of STAGE_FIELDS) {
    const value = global.stageLimits?.[field];
    const cap = limits[limit];
    if (value !== undefined && cap !== undefined && value > cap)
      problems.push(above(`box.stageLimits.${field}`, value, { value: cap, from: `box.limits.${limit}` }));
  }
  return problems;
}

/** One config error naming every problem, in the format of the schema's errors. */
export function configError(problems: PolicyProblem[]): BoxError {
  return new BoxError(
    'INVALID_ARGUMENT',
    'config',
    `Invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    { details: { problems } },
  );
}
