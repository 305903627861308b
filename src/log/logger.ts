/**
 * The `serve` process log: human-readable lines by default, JSON lines with `--log-format json`,
 * filtered by `--log-level`. Library code never logs; this is only for the CLI's own output.
 * Messages passed here are already redacted (failure records and log lines are); a relay capability in any line
 * is replaced here as well, whatever wrote it (a URL in an error, say).
 */
import type { Writable } from 'node:stream';
import { redactCapabilities } from '../util/capability-url.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** `stream` defaults to stdout; `write` replaces it (tests). */
export function createLogger(opts: {
  format: LogFormat;
  level: LogLevel;
  write?: (line: string) => void;
  stream?: Writable;
}): Logger {
  const out = opts.write ?? lineWriter(opts.stream ?? process.stdout);
  const write = (line: string): void => out(redactCapabilities(line));
  const emit = (level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const time = new Date().toISOString();
    if (opts.format === 'json') write(JSON.stringify({ time, level, msg, ...fields }));
    else
      write(
        `${time} ${level.padEnd(5)} ${msg}${
          Object.keys(fields).length === 0
            ? ''
            : ` ${Object.entries(fields)
                .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
                .join(' ')}`
        }`,
      );
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/**
 * Writes lines to `stream`, and never crashes: once its reader has gone (EPIPE from `serve | head`,
 * EIO from a closed terminal) the rest of the log goes nowhere, and serve carries on — a SIGTERM
 * must still stop its servers and remove its sessions.
 */
function lineWriter(stream: Writable): (line: string) => void {
  let broken = false;
  stream.on('error', () => (broken = true));
  return (line) => {
    if (!broken) stream.write(`${line}\n`);
  };
}

export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  if (value in ORDER) return value as LogLevel;
  throw new RangeError(`--log-level must be one of ${Object.keys(ORDER).join(', ')}`);
}

export function parseLogFormat(value: string | undefined): LogFormat {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new RangeError('--log-format must be text or json');
}
