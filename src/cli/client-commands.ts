/**
 * The client commands: they talk to a running serve over its HTTP API, and load neither the engine
 * client (dockerode) nor the supervisor (types only) — cli-modules.test.ts holds them to that.
 */
import type { LogLine } from '../supervisor/server-log.js';
import type { ServerStatus } from '../supervisor/types.js';
import { printable } from '../util/printable.js';
import { ApiClient } from './api-client.js';
import { UsageError, type CommandInput } from './command-table.js';
import type { callOptions, logsOptions, statusOptions, toolsOptions } from './command-options.js';
import { EXIT } from './exit-codes.js';

export async function status({ values }: CommandInput<typeof statusOptions>): Promise<number> {
  const api = ApiClient.from(values);
  const { servers } = await api.request<{ servers: ServerStatus[] }>('GET', '/v1/servers');
  if (values.json) {
    console.log(JSON.stringify(servers, null, 2));
    return EXIT.ok;
  }
  const rows = servers.map((s) => [
    s.name,
    s.state,
    s.phase ?? '-',
    s.error === undefined ? '-' : `${s.error.code}: ${s.error.message.split('\n')[0] ?? ''}`.slice(0, 60),
    s.readyAt === undefined ? '-' : formatUptime(Date.now() - Date.parse(s.readyAt)),
    String(s.restarts),
  ]);
  printTable(['NAME', 'STATE', 'PHASE', 'LAST ERROR', 'UPTIME', 'RESTARTS'], rows);
  return servers.some((s) => s.state === 'failed') ? EXIT.failed : EXIT.ok;
}

export async function tools({ values, args: [name = ''] }: CommandInput<typeof toolsOptions>): Promise<number> {
  const api = ApiClient.from(values);
  const { tools: list } = await api.request<{ tools: { name: string; description?: string }[] }>(
    'GET',
    `/v1/servers/${encodeURIComponent(name)}/tools`,
  );
  if (values.json) console.log(JSON.stringify(list, null, 2));
  else
    printTable(
      ['TOOL', 'DESCRIPTION'],
      list.map((t) => [t.name, (t.description ?? '').split('\n')[0] ?? '']),
    );
  return EXIT.ok;
}

export async function call({
  values,
  args: [name = '', tool = '', json],
}: CommandInput<typeof callOptions>): Promise<number> {
  let argsObject: unknown = {};
  if (json !== undefined) {
    try {
      argsObject = JSON.parse(json);
    } catch {
      throw new UsageError(`the tool arguments are not JSON: ${json}`);
    }
  }
  const api = ApiClient.from(values);
  const timeoutMs = values['timeout-ms'];
  const result = await api.request<{ content?: { type: string; text?: string }[]; isError?: boolean }>(
    'POST',
    `/v1/servers/${encodeURIComponent(name)}/tools/${encodeURIComponent(tool)}/call`,
    {
      arguments: argsObject,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    },
  );
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else
    for (const part of result.content ?? [])
      console.log(part.type === 'text' ? printable(part.text ?? '') : JSON.stringify(part));
  return result.isError === true ? EXIT.failed : EXIT.ok;
}

export async function logs({ values, args: [name = ''] }: CommandInput<typeof logsOptions>): Promise<number> {
  const api = ApiClient.from(values);
  let after = values.after;
  for (;;) {
    const page = await api.request<{ lines: LogLine[]; next: number }>(
      'GET',
      `/v1/servers/${encodeURIComponent(name)}/logs?after=${after}&limit=500`,
    );
    for (const l of page.lines)
      console.log(values.json ? JSON.stringify(l) : `${l.seq} ${l.at} [${l.source}] ${printable(l.text)}`);
    after = page.next;
    if (!values.follow) return EXIT.ok;
    if (page.lines.length === 0) await new Promise((r) => setTimeout(r, 1000));
  }
}

function printTable(header: string[], rows: string[][]): void {
  // Cells carry tenant text (error messages, tool descriptions): no terminal control reaches the operator.
  header = header.map(printable);
  rows = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
