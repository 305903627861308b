/**
 * Checks every HTTP request and WebSocket upgrade before anything else runs: browser `Origin`s and
 * foreign `Host`s are refused (cross-site WebSocket hijacking, DNS rebinding), then the bearer token
 * is compared in constant time. The token is only ever read from the Authorization header, never
 * from the query string (which ends up in logs).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface GuardOptions {
  token: string;
  /** host[:port] values accepted in the Host header, besides loopback names on the bound port. */
  allowedHosts?: string[];
  /** The port the server listens on (for the loopback Host names). */
  port: () => number;
}

export interface GuardRefusal {
  status: 401 | 403;
  code: 'UNAUTHORIZED' | 'FORBIDDEN';
  message: string;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

export function checkOriginAndHost(req: IncomingMessage, opts: GuardOptions): GuardRefusal | null {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== '') {
    return { status: 403, code: 'FORBIDDEN', message: 'Requests from browsers (an Origin header) are not accepted' };
  }
  const host = (req.headers.host ?? '').toLowerCase();
  const port = opts.port();
  const allowed = new Set([
    ...LOOPBACK_NAMES.flatMap((n) => [`${n}:${port}`, ...(port === 80 ? [n] : [])]),
    ...(opts.allowedHosts ?? []).map((h) => h.toLowerCase()),
  ]);
  if (!allowed.has(host))
    return {
      status: 403,
      code: 'FORBIDDEN',
      message: `Host ${JSON.stringify(host)} is not accepted (add it to server.allowedHosts)`,
    };
  return null;
}

export function checkToken(req: IncomingMessage, opts: GuardOptions): GuardRefusal | null {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null)
    return { status: 401, code: 'UNAUTHORIZED', message: 'Missing bearer token (Authorization: Bearer <token>)' };
  if (!sameSecret(match[1] as string, opts.token))
    return { status: 401, code: 'UNAUTHORIZED', message: 'Wrong bearer token' };
  return null;
}

/** Constant-time comparison that does not leak the length either (both sides are hashed first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}
