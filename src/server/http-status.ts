/** The one place where error codes map to HTTP statuses. */
import type { ErrorCode } from '../errors/box-error.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  INVALID_REQUIREMENT: 400,
  HOST_PATH_DENIED: 400,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  CONFLICT: 409,
  PROCESS_NOT_RUNNING: 409,
  ENGINE_UNREACHABLE: 503,
  SESSION_DEAD: 503,
  TIMEOUT: 504,
  TOOL_TIMEOUT: 504,
  TOOL_CALL_FAILED: 502,
  PROCESS_EXITED: 502,
  OOM_KILLED: 502,
  DISK_QUOTA_EXCEEDED: 502,
  CONTAINER_DIED: 502,
  STDOUT_CLOSED: 502,
  BOX_DISABLED: 503,
  INSTALL_CANCELLED: 409,
};

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}
