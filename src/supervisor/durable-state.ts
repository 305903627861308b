/**
 * What the supervisor keeps across restarts of its process, and where (the state folder): the
 * interface it writes to. `state/state-store.ts` implements it on JSONL files; the supervisor never
 * imports the store itself.
 */
import type { TaskRecord } from '../tasks/task-registry.js';
import type { LogLine } from './server-log.js';
import type { FailureRecord, StatusEvent } from './types.js';

/** What a server left behind in an earlier run. */
export interface EarlierRun {
  logs: LogLine[];
  history: StatusEvent[];
  lastFailure: FailureRecord | undefined;
}

export interface DurableState {
  /** The state folder (never staged). */
  readonly dir: string;
  appendLog(server: string, line: LogLine): void;
  appendHistory(server: string, event: StatusEvent): void;
  appendFailure(server: string, failure: FailureRecord): void;
  appendTask(task: TaskRecord): void;
  loadServer(server: string): EarlierRun;
  loadTasks(): TaskRecord[];
  /** A removed server's state goes with it. */
  forgetServer(server: string): void;
  flush(): void;
}
