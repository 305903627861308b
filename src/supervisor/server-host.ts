/** What a ManagedServer needs of its supervisor: the runtime, the shared registries, and policy. */
import type { RelayHub } from '../relay/relay-hub.js';
import type { Runtime, Session } from '../runtime/types.js';
import type { TaskRegistry } from '../tasks/task-registry.js';
import type { FolderRules } from '../workspace/host-policy.js';
import type { ClientTransport } from './attempt.js';
import type { LogLine } from './server-log.js';
import type { FailureRecord, ListKind, StatusEvent } from './types.js';

export interface ServerHost {
  runtime: Runtime;
  tasks: TaskRegistry;
  relays: RelayHub;
  boxEnabled: boolean;
  /** Sessions outlive the supervisor (box.persistentSessions). */
  persistentSessions: boolean;
  configDir: string;
  /** A connected transport to the relay of process `name` in `session` (taking it over from any client). */
  connectTransport(session: Session, name: string, signal?: AbortSignal): Promise<ClientTransport>;
  /** The relay URL a platform's own client uses (in the server's status), or null when no port is open. */
  relayUrl(session: Session, name: string): string | null;
  secrets: string[];
  logCapacity: number;
  emit(event: StatusEvent): void;
  /** The server said one of its lists changed (its own `list_changed`). */
  listChanged?: (name: string, kind: ListKind) => void;
  /** The folder rules of this server now (config/state folder, the other servers' folders). */
  folderRules?: (allowedRoots: string[]) => FolderRules;
  /** Every log line as it is written (durable state). */
  onLogLine?: (line: LogLine) => void;
  /** What this server left in an earlier run: its log and last failure. */
  seed?: { logs: LogLine[]; lastFailure: FailureRecord | undefined };
}
