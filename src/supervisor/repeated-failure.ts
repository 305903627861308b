/**
 * Failures that cannot succeed by trying again: an npm 404, a missing required env var, a
 * requirement with no matching distribution, a file that does not exist. They fail every attempt
 * the same way, before the server is ever ready. When consecutive attempts fail with the same
 * signature (phase, code, exit, and the message and stderr tail with their numbers and ids
 * blanked), the loop stops early instead of spending the whole restart budget. Failures of the
 * infrastructure (engine, container, timeouts, memory) say nothing about the server and never
 * count. Pure.
 */
import type { ErrorCode, ServerPhase } from '../errors/box-error.js';

/** Attempts in a row that must fail the same way before the loop gives up on them. */
export const SAME_FAILURE_LIMIT = 2;
const SIGNATURE_STDERR_LINES = 3;

const NOT_ABOUT_THE_SERVER = new Set<ErrorCode>([
  'ENGINE_UNREACHABLE',
  'ENGINE_ERROR',
  'SESSION_CREATE_FAILED',
  'SESSION_DEAD',
  'CONTAINER_DIED',
  'OOM_KILLED',
  'SLOTS_EXHAUSTED',
  'EXEC_TIMEOUT',
  'INSTALL_TIMEOUT',
  'INSTALL_CANCELLED',
  'MCP_INIT_TIMEOUT',
  'SERVER_UNRESPONSIVE',
  'RELAY_CONNECT_FAILED',
  'RELAY_DROPPED',
  'TOOL_TIMEOUT',
  'ABORTED',
  'TIMEOUT',
]);

export interface FailureShape {
  phase: ServerPhase;
  code: ErrorCode;
  message: string;
  exitCode?: number | null;
  signal?: string | null;
  stderrTail: string;
}

/** Numbers, hex ids, durations and timestamps vary between attempts of the same failure. */
function normalise(text: string): string {
  return text
    .replace(/\b[0-9a-f]{8,}\b/gi, '#')
    .replace(/\d+/g, '#')
    .replace(/\s+/g, ' ')
    .trim();
}

/** What makes two failures "the same way", or null for failures that never count. */
export function failureSignature(f: FailureShape): string | null {
  if (NOT_ABOUT_THE_SERVER.has(f.code)) return null;
  const tail = f.stderrTail
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-SIGNATURE_STDERR_LINES);
  // A process that dies while starting is seen in whichever start phase was running at the time.
  const phase = f.phase === 'relay_connect' || f.phase === 'mcp_init' ? 'process_start' : f.phase;
  return [phase, f.code, String(f.exitCode ?? ''), f.signal ?? '', normalise(f.message), ...tail.map(normalise)].join(
    '\u0000',
  );
}

/** Counts consecutive start attempts that failed with one signature. */
export class RepeatedFailures {
  private last: string | null = null;
  private count = 0;

  constructor(private readonly limit = SAME_FAILURE_LIMIT) {}

  /** A failed start attempt; returns how many attempts in a row failed this way (0: does not count). */
  observe(failure: FailureShape): number {
    const signature = failureSignature(failure);
    if (signature === null) {
      // An infrastructure failure in between says nothing either way: the streak neither grows nor ends.
      return 0;
    }
    this.count = signature === this.last ? this.count + 1 : 1;
    this.last = signature;
    return this.count;
  }

  /** Whether `count` (from observe) means: stop trying. */
  exhausted(count: number): boolean {
    return count >= this.limit;
  }

  /** The server was ready (or an admin restarted it): the streak ends. */
  reset(): void {
    this.last = null;
    this.count = 0;
  }
}
