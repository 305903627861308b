/** Session profiles: defaults, validation and the hash that names a shared session. */
import { createHash } from 'node:crypto';
import { DEFAULT_PROFILE as DEFAULTS } from '../defaults.js';
import { BoxError } from '../errors/box-error.js';
import type { SessionProfile } from './types.js';

export { DEFAULT_SANDBOX_IMAGE } from '../defaults.js';
/** The default session profile (src/defaults.ts), as a SessionProfile. */
export const DEFAULT_PROFILE: Readonly<SessionProfile> = DEFAULTS;

/** A numeric profile field's allowed values; the config schema and `resolveProfile` both use this. */
export interface ProfileRange {
  integer: boolean;
  /** Smallest allowed value (inclusive), or with `exclusiveMin` the value it must be above. */
  min: number;
  exclusiveMin?: boolean;
  max?: number;
}

/** The one source of the profile's numeric ranges. */
export const PROFILE_RANGES = {
  cpus: { integer: false, min: 0, exclusiveMin: true, max: 64 },
  memoryMb: { integer: true, min: 64 },
  pidsLimit: { integer: true, min: 16 },
  tmpfsMb: { integer: true, min: 1 },
} as const satisfies Record<'cpus' | 'memoryMb' | 'pidsLimit' | 'tmpfsMb', ProfileRange>;

/** "must be an integer >= 64" / "must be > 0 and <= 64". */
export function describeRange(range: ProfileRange): string {
  const parts = [
    `${range.exclusiveMin === true ? '>' : '>='} ${range.min}`,
    ...(range.max === undefined ? [] : [`<= ${range.max}`]),
  ];
  return `${range.integer ? 'an integer ' : ''}${parts.join(' and ')}`;
}

export function inRange(value: unknown, range: ProfileRange): boolean {
  if (typeof value !== 'number' || Number.isNaN(value)) return false;
  if (range.integer && !Number.isInteger(value)) return false;
  if (range.exclusiveMin === true ? value <= range.min : value < range.min) return false;
  return range.max === undefined || value <= range.max;
}

export function resolveProfile(partial: Partial<SessionProfile> = {}): SessionProfile {
  const profile: SessionProfile = { ...DEFAULT_PROFILE };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(partial)) {
    if (!(key in DEFAULT_PROFILE)) problems.push(`unknown field ${JSON.stringify(key)}`);
    else if (value !== undefined) (profile as unknown as Record<string, unknown>)[key] = value;
  }
  if (typeof profile.readOnlyRootfs !== 'boolean')
    problems.push(`readOnlyRootfs must be true or false, got ${JSON.stringify(profile.readOnlyRootfs)}`);
  if (typeof profile.image !== 'string' || profile.image.trim() === '')
    problems.push('image must be a non-empty string');
  if (profile.network !== 'on' && profile.network !== 'off')
    problems.push(`network must be "on" or "off", got ${JSON.stringify(profile.network)}`);
  for (const [field, range] of Object.entries(PROFILE_RANGES) as [keyof typeof PROFILE_RANGES, ProfileRange][]) {
    if (!inRange(profile[field], range))
      problems.push(`${field} must be ${describeRange(range)}, got ${profile[field]}`);
  }
  if (problems.length > 0) {
    throw new BoxError('INVALID_ARGUMENT', 'session_create', `Invalid session profile: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return profile;
}

/** 12 hex chars over the canonical JSON of the profile: equal profiles share a session. */
export function profileHash(profile: SessionProfile): string {
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(profile).sort(([a], [b]) => a.localeCompare(b))));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}
