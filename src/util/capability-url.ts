/**
 * Relay capabilities: 256 random bits in a URL path (`/v1/relay/<43 base64url characters>`) that let one client
 * reach one process without a header. A capability is a credential: log lines carry the placeholder instead.
 */
import { randomBytes } from 'node:crypto';

const CAPABILITY_PATH = /\/v1\/relay\/[A-Za-z0-9_-]{43}/g;

export function newCapability(): string {
  return randomBytes(32).toString('base64url');
}

export function capabilityPath(capability: string): string {
  return `/v1/relay/${capability}`;
}

/** `text` with every capability path replaced by `/v1/relay/[capability]`. */
export function redactCapabilities(text: string): string {
  return text.replace(CAPABILITY_PATH, '/v1/relay/[capability]');
}
