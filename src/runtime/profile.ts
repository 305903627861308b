/** Session profiles: defaults, validation and the hash that names a shared session. */
import { createHash } from 'node:crypto';
import { BoxError } from '../errors/box-error.js';
import type { SessionProfile } from './types.js';

export const DEFAULT_SANDBOX_IMAGE = 'mcp-box-sandbox:latest';

export const DEFAULT_PROFILE: SessionProfile = {
  image: DEFAULT_SANDBOX_IMAGE,
  network: 'on',
  cpus: 1,
  memoryMb: 1536,
  pidsLimit: 256,
  readOnlyRootfs: true,
  tmpfsMb: 64,
};

export function resolveProfile(partial: Partial<SessionProfile> = {}): SessionProfile {
  const profile: SessionProfile = { ...DEFAULT_PROFILE };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(partial)) {
    if (!(key in DEFAULT_PROFILE)) problems.push(`unknown field ${JSON.stringify(key)}`);
    else if (value !== undefined) (profile as unknown as Record<string, unknown>)[key] = value;
  }
  if (typeof profile.readOnlyRootfs !== 'boolean') problems.push(`readOnlyRootfs must be true or false, got ${JSON.stringify(profile.readOnlyRootfs)}`);
  if (typeof profile.image !== 'string' || profile.image.trim() === '') problems.push('image must be a non-empty string');
  if (profile.network !== 'on' && profile.network !== 'off') problems.push(`network must be "on" or "off", got ${JSON.stringify(profile.network)}`);
  if (!(typeof profile.cpus === 'number' && profile.cpus > 0 && profile.cpus <= 64)) problems.push(`cpus must be > 0 and <= 64, got ${profile.cpus}`);
  if (!(Number.isInteger(profile.memoryMb) && profile.memoryMb >= 64)) problems.push(`memoryMb must be an integer >= 64, got ${profile.memoryMb}`);
  if (!(Number.isInteger(profile.pidsLimit) && profile.pidsLimit >= 16)) problems.push(`pidsLimit must be an integer >= 16, got ${profile.pidsLimit}`);
  if (!(Number.isInteger(profile.tmpfsMb) && profile.tmpfsMb >= 1)) problems.push(`tmpfsMb must be an integer >= 1, got ${profile.tmpfsMb}`);
  if (problems.length > 0) {
    throw new BoxError('INVALID_ARGUMENT', 'session_create', `Invalid session profile: ${problems.join('; ')}`, { details: { problems } });
  }
  return profile;
}

/** 12 hex chars over the canonical JSON of the profile: equal profiles share a session. */
export function profileHash(profile: SessionProfile): string {
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(profile).sort(([a], [b]) => a.localeCompare(b))));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}
