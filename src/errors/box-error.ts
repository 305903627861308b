/**
 * The one error class of mcp-box. Every failure carries a machine `code`, the lifecycle `phase`
 * it happened in, a readable `message` (never a secret), the original `cause` and `details`.
 */

/** Lifecycle phases of a server, in the order they run, plus the phases of supporting operations. */
export const SERVER_PHASES = [
  'box_unavailable',
  'session_create',
  'workspace_stage',
  'dep_install',
  'process_start',
  'relay_connect',
  'mcp_init',
  'runtime',
  'tool_call',
] as const;
export type ServerPhase = (typeof SERVER_PHASES)[number];

/**
 * Phases of operations around the servers: `config` (a config file or a server definition),
 * `image` (the sandbox image), `shutdown`, and `request` (what a client of the HTTP API or the CLI
 * sent or asked for: a body that is not JSON or not its schema, a bad query parameter, an unknown
 * task id, a `serve` that does not answer).
 */
export const OPERATION_PHASES = ['config', 'image', 'shutdown', 'request'] as const;

/** Every phase an error may carry: the one list (the OpenAPI document and the README derive from it). */
export const PHASES = [...SERVER_PHASES, ...OPERATION_PHASES] as const;
export type Phase = (typeof PHASES)[number];

export type ErrorCode =
  | 'ENGINE_UNREACHABLE'
  | 'ENGINE_ERROR'
  | 'IMAGE_MISSING'
  | 'IMAGE_BUILD_FAILED'
  | 'SESSION_CREATE_FAILED'
  | 'SESSION_DEAD'
  | 'HARDENING_CHECK_FAILED'
  | 'EXEC_FAILED'
  | 'EXEC_TIMEOUT'
  | 'PROCESS_START_FAILED'
  | 'PROCESS_EXITED'
  | 'PROCESS_NOT_RUNNING'
  | 'OOM_KILLED'
  | 'DISK_QUOTA_EXCEEDED'
  | 'CONTAINER_DIED'
  | 'SLOTS_EXHAUSTED'
  | 'HOST_PATH_DENIED'
  | 'STAGE_FAILED'
  | 'STAGE_LIMIT_EXCEEDED'
  | 'INVALID_REQUIREMENT'
  | 'INSTALL_FAILED'
  | 'INSTALL_TIMEOUT'
  | 'INSTALL_CANCELLED'
  | 'INTERRUPTED'
  | 'BOX_DISABLED'
  | 'RELAY_CONNECT_FAILED'
  | 'RELAY_DROPPED'
  | 'MCP_INIT_FAILED'
  | 'MCP_INIT_TIMEOUT'
  | 'SERVER_UNRESPONSIVE'
  | 'STDOUT_CLOSED'
  | 'TOOL_TIMEOUT'
  | 'TOOL_CALL_FAILED'
  | 'INVALID_ARGUMENT'
  | 'PAYLOAD_TOO_LARGE'
  | 'INTERNAL_ERROR'
  | 'SERVE_UNREACHABLE'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'ABORTED'
  | 'TIMEOUT';

export interface BoxErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class BoxError extends Error {
  override readonly name = 'BoxError';
  readonly code: ErrorCode;
  readonly phase: Phase;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, phase: Phase, message: string, options: BoxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.phase = phase;
    this.details = options.details ?? {};
  }

  /** The shape that crosses process boundaries (HTTP, logs): no stack, no cause chain. */
  toJSON(): { code: ErrorCode; phase: Phase; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, phase: this.phase, message: this.message, details: this.details };
  }
}

export const isBoxError = (value: unknown): value is BoxError => value instanceof BoxError;

/** A short, single-line description of any thrown value, for messages. */
export function describeError(value: unknown): string {
  if (value instanceof Error) return value.message.split('\n')[0] ?? value.name;
  return String(value);
}
