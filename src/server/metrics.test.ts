import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Supervisor } from '../supervisor/supervisor.js';
import { Metrics } from './metrics.js';

/** Just what render() reads: no servers, no relay traffic. */
const idleSupervisor = {
  list: () => [],
  relays: {
    totals: () => ({
      messagesOut: 0,
      bytesOut: 0,
      messagesIn: 0,
      bytesIn: 0,
      nonJsonLines: 0,
      overLimitLines: 0,
      rejectedFrames: 0,
    }),
  },
} as unknown as Supervisor;

const lagOf = (text: string, quantile: string): number =>
  Number(new RegExp(`^mcp_box_event_loop_lag_seconds\\{quantile="${quantile}"\\} (\\S+)$`, 'm').exec(text)?.[1]);

describe('Metrics: event-loop lag', () => {
  it('is absent until the monitor runs, then exported by quantile, with the max', async () => {
    const metrics = new Metrics();
    expect(metrics.render(idleSupervisor)).not.toContain('mcp_box_event_loop_lag');
    const stop = metrics.monitorEventLoop();
    try {
      await delay(60);
      const text = metrics.render(idleSupervisor);
      expect(text).toContain('# TYPE mcp_box_event_loop_lag_seconds gauge');
      for (const q of ['0.5', '0.9', '0.99']) expect(lagOf(text, q)).toBeGreaterThanOrEqual(0);
      expect(text).toMatch(/^mcp_box_event_loop_lag_max_seconds \d/m);
    } finally {
      stop();
    }
    expect(metrics.render(idleSupervisor)).not.toContain('mcp_box_event_loop_lag');
  });

  it('sees a blocked loop, and starts over after each scrape', async () => {
    const metrics = new Metrics();
    const stop = metrics.monitorEventLoop();
    try {
      await delay(30);
      metrics.render(idleSupervisor);
      await delay(30); // a reset restarts the sampling: let the monitor tick once before blocking
      const end = Date.now() + 150;
      while (Date.now() < end);
      await delay(30);
      const blocked = metrics.render(idleSupervisor);
      expect(Number(/^mcp_box_event_loop_lag_max_seconds (\S+)$/m.exec(blocked)?.[1])).toBeGreaterThan(0.1);
      expect(lagOf(blocked, '0.99')).toBeGreaterThan(0.1);
      await delay(60);
      expect(lagOf(metrics.render(idleSupervisor), '0.99')).toBeLessThan(0.1);
    } finally {
      stop();
    }
  });
});

describe('Metrics: unexpected HTTP errors', () => {
  it('counts them by where they happened, from zero', () => {
    const metrics = new Metrics();
    expect(metrics.render(idleSupervisor)).toMatch(/^mcp_box_http_unexpected_errors_total\{where="request"\} 0$/m);
    metrics.onUnexpectedHttpError('upgrade');
    metrics.onUnexpectedHttpError('upgrade');
    const text = metrics.render(idleSupervisor);
    expect(text).toMatch(/^mcp_box_http_unexpected_errors_total\{where="upgrade"\} 2$/m);
    expect(text).toMatch(/^mcp_box_http_unexpected_errors_total\{where="request"\} 0$/m);
  });
});
