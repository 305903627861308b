export { createSupervisor } from './library.js';
export type { CreateSupervisorOptions } from './library.js';
export { Supervisor } from './supervisor/supervisor.js';
export type { SupervisorOptions } from './supervisor/supervisor.js';
export type {
  FailureRecord,
  RelayInfo,
  ServerState,
  ServerStatus,
  ServerView,
  StatusEvent,
} from './supervisor/types.js';
export type { LogLine, LogSource } from './supervisor/server-log.js';
export { parseConfig, parseServerDefinition } from './config/parse-config.js';
export { configSchema } from './config/schema.js';
export type { McpBoxConfig, ServerDefinition } from './config/schema.js';
export { WsClientTransport } from './mcp/ws-client-transport.js';
export type { WsClientTransportOptions } from './mcp/ws-client-transport.js';
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
export { resolveHostFolder, rewriteForContainer } from './workspace/host-folder.js';
export type { FolderResolution, ServerCommand } from './workspace/host-folder.js';
export { checkHostPolicy } from './workspace/host-policy.js';
export type { HostPolicy } from './workspace/host-policy.js';
export { DEFAULT_STAGE_LIMITS } from './workspace/walk-folder.js';
export type { StageLimits } from './workspace/walk-folder.js';
export type { StageResult } from './workspace/stage-folder.js';
export { detectInstallPlan } from './install/detect-install.js';
export type { InstallOptions, InstallPlan, ToolVersions } from './install/detect-install.js';
export { DEFAULT_INSTALL_TIMEOUT_MS, installDependencies } from './install/install-dependencies.js';
export type { InstallOutcome, StagedWorkspace } from './install/install-dependencies.js';
export { stageWorkspace } from './supervisor/stage-server.js';
export { TaskRegistry } from './tasks/task-registry.js';
export type { TaskContext, TaskRecord, TaskState } from './tasks/task-registry.js';
