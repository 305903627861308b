/**
 * One subscription to the engine's event stream for every container mcp-box manages. Events are
 * routed to sessions by container id. The stream is re-opened (from the last event's time) when
 * it drops, until close(); every re-opened stream is followed by `onReopened`, because the engine
 * replays only what its bounded event log still holds and a restarted engine replays nothing of
 * what happened before it stopped: the caller asks the engine about each session directly.
 */
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { delay } from '../../util/abort.js';
import type { SessionEvent } from '../types.js';
import { LABEL_MANAGED } from './labels.js';

interface RawEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

const ACTIONS = new Set(['die', 'oom', 'kill', 'start', 'destroy', 'exec_die']);

export class EngineEvents {
  private readonly docker: Dockerode;
  private readonly route: (containerId: string, event: SessionEvent) => void;
  private readonly onReopened: () => void;
  private opened = 0;
  private readonly controller = new AbortController();
  private stream: Readable | null = null;
  private lastSeconds = Math.floor(Date.now() / 1000);
  private readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(
    docker: Dockerode,
    route: (containerId: string, event: SessionEvent) => void,
    onReopened: () => void = () => undefined,
  ) {
    this.docker = docker;
    this.route = route;
    this.onReopened = onReopened;
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    void this.loop();
  }

  /** Resolves once the first subscription is open (or failed once). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  close(): void {
    this.controller.abort();
    this.stream?.destroy();
  }

  private async loop(): Promise<void> {
    let backoff = 250;
    while (!this.controller.signal.aborted) {
      try {
        await this.subscribeOnce();
        backoff = 250;
      } catch {
        // fall through to the retry below
      }
      this.markReady();
      if (this.controller.signal.aborted) return;
      await delay(backoff, this.controller.signal).catch(() => undefined);
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  private async subscribeOnce(): Promise<void> {
    const stream = (await this.docker.getEvents({
      since: this.lastSeconds,
      filters: { type: ['container'], label: [`${LABEL_MANAGED}=true`] },
      abortSignal: this.controller.signal,
    } as never)) as unknown as Readable;
    this.stream = stream;
    this.markReady();
    if (this.opened++ > 0) this.onReopened();
    let buffered = '';
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '') this.dispatch(line);
        }
      });
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });
  }

  private dispatch(line: string): void {
    let raw: RawEvent;
    try {
      raw = JSON.parse(line) as RawEvent;
    } catch {
      return;
    }
    const action = (raw.Action ?? '').split(':')[0] ?? '';
    const containerId = raw.Actor?.ID;
    if (raw.Type !== 'container' || containerId === undefined || !ACTIONS.has(action)) return;
    if (typeof raw.time === 'number') this.lastSeconds = raw.time;
    const attrs = raw.Actor?.Attributes ?? {};
    const at =
      raw.timeNano !== undefined
        ? new Date(raw.timeNano / 1e6).toISOString()
        : new Date((raw.time ?? Date.now() / 1000) * 1000).toISOString();
    const event: SessionEvent = {
      session: attrs.name ?? '',
      containerId,
      action: action as SessionEvent['action'],
      at,
      ...(attrs.exitCode === undefined ? {} : { exitCode: Number(attrs.exitCode) }),
      ...(attrs.signal === undefined ? {} : { signal: attrs.signal }),
      ...(attrs.execID === undefined ? {} : { execId: attrs.execID }),
    };
    this.route(containerId, event);
  }
}
