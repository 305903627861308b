/** Prometheus text metrics of a supervisor: servers by state, restarts and failures by phase,
 * tool-call latency, relay traffic, install durations, and serve's own event-loop lag. */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { StatusEvent } from '../supervisor/types.js';
import type { TaskRecord } from '../tasks/task-registry.js';
import { SERVER_STATES } from '../supervisor/server-states.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const INSTALL_BUCKETS = [0.1, 1, 5, 10, 30, 60, 120, 300, 600];
/** Sampling period of the event-loop delay monitor; every sample is at least this long. */
const EVENT_LOOP_RESOLUTION_MS = 10;
const LAG_QUANTILES = [0.5, 0.9, 0.99];

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(private readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    this.buckets.forEach((b, i) => {
      if (value <= b) this.counts[i] = (this.counts[i] ?? 0) + 1;
    });
  }
  render(name: string, labels = ''): string[] {
    const l = labels === '' ? '' : `${labels},`;
    return [
      ...this.buckets.map((b, i) => `${name}_bucket{${l}le="${b}"} ${this.counts[i] ?? 0}`),
      `${name}_bucket{${l}le="+Inf"} ${this.count}`,
      `${name}_sum${labels === '' ? '' : `{${labels}}`} ${this.sum}`,
      `${name}_count${labels === '' ? '' : `{${labels}}`} ${this.count}`,
    ];
  }
}

export class Metrics {
  private readonly failures = new Map<string, number>();
  private restarts = 0;
  private readonly toolLatency = new Histogram(LATENCY_BUCKETS);
  private readonly toolErrors = new Map<string, number>();
  private readonly installs = new Histogram(INSTALL_BUCKETS);
  private readonly seenTasks = new Set<string>();
  private eventLoop: IntervalHistogram | null = null;
  private readonly httpUnexpected = new Map<string, number>([
    ['request', 0],
    ['upgrade', 0],
  ]);
  private stateWriteErrors = 0;

  /** Starts sampling the event-loop delay (see the lag gauges in render); returns the stop. */
  monitorEventLoop(): () => void {
    const histogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    histogram.enable();
    this.eventLoop = histogram;
    return () => {
      histogram.disable();
      if (this.eventLoop === histogram) this.eventLoop = null;
    };
  }

  onStatus(event: StatusEvent): void {
    if (
      (event.state === 'backoff' || event.state === 'failed') &&
      event.previous !== event.state &&
      event.error !== undefined
    ) {
      const key = `${event.error.phase}\u0000${event.error.code}`;
      this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
    }
    if (event.state === 'starting' && event.previous === 'backoff') this.restarts++;
  }

  onTask(task: TaskRecord): void {
    if (task.kind !== 'install' || task.state === 'working' || this.seenTasks.has(task.id)) return;
    this.seenTasks.add(task.id);
    this.installs.observe(task.elapsedMs / 1000);
  }

  onToolCall(seconds: number, errorCode: string | null): void {
    this.toolLatency.observe(seconds);
    if (errorCode !== null) this.toolErrors.set(errorCode, (this.toolErrors.get(errorCode) ?? 0) + 1);
  }

  /** A request or upgrade handler threw something that is not a BoxError (a bug; logged by serve). */
  onStateWriteError(): void {
    this.stateWriteErrors++;
  }

  onUnexpectedHttpError(where: 'request' | 'upgrade'): void {
    this.httpUnexpected.set(where, (this.httpUnexpected.get(where) ?? 0) + 1);
  }

  render(supervisor: Supervisor): string {
    const lines: string[] = [];
    const help = (name: string, type: string, text: string): void => {
      lines.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`);
    };
    help('mcp_box_servers', 'gauge', 'Servers by state.');
    const byState = new Map<string, number>();
    for (const s of supervisor.list()) byState.set(s.state, (byState.get(s.state) ?? 0) + 1);
    for (const state of SERVER_STATES) lines.push(`mcp_box_servers{state="${state}"} ${byState.get(state) ?? 0}`);
    help('mcp_box_failures_total', 'counter', 'Server failures by lifecycle phase and code.');
    for (const [key, n] of this.failures) {
      const [phase, code] = key.split('\u0000');
      lines.push(`mcp_box_failures_total{phase="${phase}",code="${code}"} ${n}`);
    }
    help('mcp_box_restarts_total', 'counter', 'Automatic restarts after a failure.');
    lines.push(`mcp_box_restarts_total ${this.restarts}`);
    help('mcp_box_tool_call_duration_seconds', 'histogram', 'tools/call latency through the API.');
    lines.push(...this.toolLatency.render('mcp_box_tool_call_duration_seconds'));
    help('mcp_box_tool_call_errors_total', 'counter', 'Failed tool calls by error code.');
    for (const [code, n] of this.toolErrors) lines.push(`mcp_box_tool_call_errors_total{code="${code}"} ${n}`);
    const relay = supervisor.relays.totals();
    help('mcp_box_relay_messages_total', 'counter', 'JSON-RPC messages relayed (out = server to client).');
    lines.push(
      `mcp_box_relay_messages_total{direction="out"} ${relay.messagesOut}`,
      `mcp_box_relay_messages_total{direction="in"} ${relay.messagesIn}`,
    );
    help('mcp_box_relay_bytes_total', 'counter', 'Bytes relayed.');
    lines.push(
      `mcp_box_relay_bytes_total{direction="out"} ${relay.bytesOut}`,
      `mcp_box_relay_bytes_total{direction="in"} ${relay.bytesIn}`,
    );
    help('mcp_box_relay_rejected_total', 'counter', 'Non-JSON stdout lines, over-limit lines and bad client frames.');
    lines.push(
      `mcp_box_relay_rejected_total{kind="non_json_stdout"} ${relay.nonJsonLines}`,
      `mcp_box_relay_rejected_total{kind="over_limit"} ${relay.overLimitLines}`,
      `mcp_box_relay_rejected_total{kind="bad_client_frame"} ${relay.rejectedFrames}`,
    );
    help('mcp_box_install_duration_seconds', 'histogram', 'Dependency install durations.');
    lines.push(...this.installs.render('mcp_box_install_duration_seconds'));
    help(
      'mcp_box_http_unexpected_errors_total',
      'counter',
      'Unexpected exceptions in HTTP request and upgrade handlers (logged; serve kept serving).',
    );
    for (const [where, n] of this.httpUnexpected)
      lines.push(`mcp_box_http_unexpected_errors_total{where="${where}"} ${n}`);
    help(
      'mcp_box_state_write_errors_total',
      'counter',
      'Writes to the state folder that failed (a full disk, a removed folder); ' +
        'their records were dropped and serve kept serving.',
    );
    lines.push(`mcp_box_state_write_errors_total ${this.stateWriteErrors}`);
    if (this.eventLoop !== null) lines.push(...this.renderEventLoop(this.eventLoop, help));
    return `${lines.join('\n')}\n`;
  }

  /** Lag = how late the monitor's timer fired, over the samples since the previous scrape (the
   * histogram is reset on each render, as prom-client does for nodejs_eventloop_lag_*). */
  private renderEventLoop(
    histogram: IntervalHistogram,
    help: (name: string, type: string, text: string) => void,
  ): string[] {
    const lines: string[] = [];
    const lag = (ns: number): number =>
      histogram.count === 0 ? 0 : Math.max(0, ns / 1e6 - EVENT_LOOP_RESOLUTION_MS) / 1000;
    help(
      'mcp_box_event_loop_lag_seconds',
      'gauge',
      'Event-loop lag of serve since the previous scrape, ' +
        `by quantile (timer sampled every ${EVENT_LOOP_RESOLUTION_MS} ms).`,
    );
    for (const q of LAG_QUANTILES)
      lines.push(`mcp_box_event_loop_lag_seconds{quantile="${q}"} ${lag(histogram.percentile(q * 100))}`);
    help('mcp_box_event_loop_lag_max_seconds', 'gauge', 'Largest event-loop lag of serve since the previous scrape.');
    lines.push(`mcp_box_event_loop_lag_max_seconds ${lag(histogram.max)}`);
    histogram.reset();
    return lines;
  }
}
