import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it, vi } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import type { ProcessExit } from '../runtime/types.js';
import type { Attempt } from './attempt.js';
import type { Failure } from './failure-record.js';
import { CallGuard } from './call-guard.js';

/** A guard over an attempt whose client's tool calls do what `answers` says, in turn. */
function setup(answers: (() => Promise<unknown>)[], recycleAfterTimeouts = 2) {
  const failed: BoxError[] = [];
  const ended: Failure[] = [];
  const logged: string[] = [];
  const client = { transport: {}, callTool: vi.fn(() => answers.shift()!()) };
  const attempt = {
    client,
    exit: null as ProcessExit | null,
    exitSoon: vi.fn(() => Promise.resolve(null)),
    fail: (f: Failure) => ended.push(f),
  };
  const guard = new CallGuard({
    name: 'srv',
    toolTimeoutMs: 5,
    recycleAfterTimeouts,
    redact: (t) => t.replaceAll('hunter2', '***'),
    log: (line) => logged.push(line),
    exitError: (exit, context) => new BoxError('PROCESS_EXITED', 'runtime', `exited ${exit.exitCode} ${context}`),
    onCallFailed: (error) => failed.push(error),
  });
  const call = (tool = 'echo') =>
    guard.callTool(attempt as unknown as Attempt, client as unknown as Client, { tool, args: {} });
  return { guard, attempt, call, failed, ended, logged };
}

const timeout = () => Promise.reject(new McpError(ErrorCode.RequestTimeout, 'Request timed out'));
const answer = () => Promise.resolve({ content: [] });

describe('CallGuard', () => {
  it('records each timeout, recycles after N in a row; a tool answer starts the count over', async () => {
    const { call, failed, ended, logged } = setup([timeout, answer, timeout, timeout]);
    await expect(call()).rejects.toMatchObject({ code: 'TOOL_TIMEOUT', details: { consecutiveTimeouts: 1 } });
    await expect(call()).resolves.toEqual({ content: [] });
    await expect(call()).rejects.toMatchObject({ details: { consecutiveTimeouts: 1 } });
    expect(ended).toEqual([]);
    await expect(call()).rejects.toMatchObject({ code: 'TOOL_TIMEOUT', details: { consecutiveTimeouts: 2 } });
    expect(failed.map((e) => e.code)).toEqual(['TOOL_TIMEOUT', 'TOOL_TIMEOUT', 'TOOL_TIMEOUT']);
    expect(ended).toHaveLength(1);
    expect(ended[0]?.error).toMatchObject({ code: 'TOOL_TIMEOUT', phase: 'tool_call' });
    expect(ended[0]?.error.message).toContain('recycled after 2 consecutive tool-call timeouts');
    expect(logged).toEqual(['2 tool calls in a row timed out: recycling the server']);
  });

  it('never recycles with recycleAfterTimeouts 0', async () => {
    const { call, ended } = setup([timeout, timeout, timeout], 0);
    for (let i = 0; i < 3; i++) await expect(call()).rejects.toMatchObject({ code: 'TOOL_TIMEOUT' });
    expect(ended).toEqual([]);
  });

  it('an exit during the call is the error, and not recorded as the call failure', async () => {
    const { call, attempt, failed } = setup([
      () => {
        attempt.exit = { exitCode: 137 } as ProcessExit;
        return Promise.reject(new McpError(ErrorCode.InternalError, 'gone'));
      },
    ]);
    await expect(call('slow')).rejects.toMatchObject({
      code: 'PROCESS_EXITED',
      message: 'exited 137 while tool "slow" was running',
    });
    expect(failed).toEqual([]);
  });

  it("records the server's own failure (redacted); not the relay's answer for a process that is gone", async () => {
    const { call, failed } = setup([
      () => Promise.reject(new McpError(ErrorCode.InvalidParams, 'bad token hunter2')),
      () => Promise.reject(new McpError(-32000, 'process exited', { phase: 'runtime', code: 'PROCESS_EXITED' })),
    ]);
    await expect(call()).rejects.toMatchObject({
      code: 'TOOL_CALL_FAILED',
      phase: 'tool_call',
      details: { jsonRpcCode: ErrorCode.InvalidParams },
    });
    expect(failed[0]?.message).toContain('bad token ***');
    await expect(call()).rejects.toMatchObject({ code: 'PROCESS_EXITED', phase: 'runtime' });
    expect(failed).toHaveLength(1);
  });
});
