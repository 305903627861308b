/**
 * Every default of mcp-box in one place: the values a server gets when neither the operator's `box`
 * nor its own says otherwise, and the defaults of `serve`. Other modules import (or re-export) them
 * from here; the README's Configuration table states the same numbers.
 *
 * This module has no runtime imports, so anything (the CLI's client verbs included) may load it.
 */

/** What staging may copy of one server's folder. */
export interface StageLimits {
  maxBytes: number;
  maxFiles: number;
  maxDepth: number;
}

export const DEFAULT_SANDBOX_IMAGE = 'mcp-box-sandbox:latest';

/** The session profile (`box.image`, `network`, `cpus`, `memoryMb`, `pidsLimit`, `readOnlyRootfs`, `tmpfsMb`). */
// Typed here by its shape (this module imports nothing); runtime/profile.ts holds it to SessionProfile.
export const DEFAULT_PROFILE = Object.freeze({
  image: DEFAULT_SANDBOX_IMAGE,
  network: 'on' as 'on' | 'off',
  cpus: 1,
  memoryMb: 1536,
  pidsLimit: 256,
  readOnlyRootfs: true,
  tmpfsMb: 64,
});

/** Per-uid process-count limit (RLIMIT_NPROC, `box.processLimit`), so one tenant's fork bomb stays its own. */
export const DEFAULT_NPROC_PER_IDENTITY = 128;
/** Per-uid open-file limit (RLIMIT_NOFILE). */
export const DEFAULT_NOFILE_PER_IDENTITY = 4096;

/** A server's disk quota (`box.diskMb`, `box.diskFiles`): room for a venv or node_modules of a large server. */
export const DEFAULT_DISK_MB = 2048;
export const DEFAULT_DISK_FILES = 200_000;
/** How often running servers' disk use is measured (`box.diskCheckSec`). */
export const DEFAULT_DISK_CHECK_SEC = 10;

/** Phase deadlines (`box.installTimeoutSec`, `startupTimeoutSec`, `toolTimeoutSec`). */
export const DEFAULT_INSTALL_TIMEOUT_MS = 300_000;
export const DEFAULT_STARTUP_TIMEOUT_MS = 120_000;
export const DEFAULT_TOOL_TIMEOUT_MS = 60_000;

/** MCP ping for health (`box.pingIntervalSec`; 0 = off). */
export const DEFAULT_PING_INTERVAL_MS = 30_000;
/** Consecutive tool timeouts that recycle a server (`box.recycleAfterTimeouts`; 0 = never). */
export const DEFAULT_RECYCLE_AFTER_TIMEOUTS = 3;

export interface RestartSettings {
  maxRestarts: number;
  windowMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  healthyAfterMs: number;
}

/** `box.restart`: 5 failures in 10 min, backoff 1 s doubling to 60 s, budget back after 5 min ready. */
export const DEFAULT_RESTART: Readonly<RestartSettings> = Object.freeze({
  maxRestarts: 5,
  windowMs: 10 * 60_000,
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  healthyAfterMs: 5 * 60_000,
});

/** `box.stageLimits`: what one server's folder may hold when it is staged. */
export const DEFAULT_STAGE_LIMITS: Readonly<StageLimits> = Object.freeze({
  maxBytes: 256 * 1024 * 1024,
  maxFiles: 20_000,
  maxDepth: 32,
});

/** `box.relay`: the longest JSON-RPC line (either way), what a relay holds while no client is attached, heartbeat. */
export const DEFAULT_RELAY_MAX_LINE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_RELAY_DETACHED_BUFFER_BYTES = 32 * 1024 * 1024;
export const DEFAULT_RELAY_HEARTBEAT_MS = 15_000;

/** `state.dir`: durable state and the generated token, relative to the config's folder. */
export const DEFAULT_STATE_DIR = '.mcp-box';

/** `server.host` / `server.port` of `serve` (the library picks a free port when unset). */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 5410;
/** `server.headersTimeoutMs`: time a client has to send its request line and headers. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
/** How long `serve` gives its servers to stop after SIGTERM/SIGINT/SIGHUP. */
export const SHUTDOWN_GRACE_MS = 30_000;

/** Streamable HTTP sessions (`/v1/servers/{name}/mcp`, `/mcp`): at most this many per server (and for `/mcp`),
 * and a session with no request for this long is ended (its client gets a 404 and initializes again). */
export const DEFAULT_MCP_SESSIONS_PER_SERVER = 256;
export const DEFAULT_MCP_SESSION_IDLE_MS = 30 * 60_000;
