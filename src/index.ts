export { BoxError, isBoxError, SERVER_PHASES } from './errors/box-error.js';
export type { ErrorCode, Phase, ServerPhase } from './errors/box-error.js';
export { createDockerRuntime } from './runtime/docker/docker-runtime.js';
export type { DockerRuntimeOptions } from './runtime/docker/docker-runtime.js';
export { DEFAULT_PROFILE, DEFAULT_SANDBOX_IMAGE, profileHash, resolveProfile } from './runtime/profile.js';
export { evaluateHardening } from './runtime/hardening.js';
export type { HardeningReport } from './runtime/hardening.js';
export { ensureSandboxImage } from './image/sandbox-image.js';
export type { SandboxImageResult } from './image/sandbox-image.js';
export type {
  ContainerState,
  EngineInfo,
  ExecResult,
  ExecSpec,
  ExitReason,
  Identity,
  ManagedProcess,
  ManagedProcessSpec,
  ProcessExit,
  ReapReport,
  Runtime,
  Session,
  SessionEvent,
  SessionInfo,
  SessionProfile,
  StopOptions,
} from './runtime/types.js';
export { MCP_BOX_VERSION } from './version.js';
