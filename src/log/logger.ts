/**
 * The `serve` process log: human-readable lines by default, JSON lines with `--log-format json`,
 * filtered by `--log-level`. Library code never logs; this is only for the CLI's own output.
 * Messages passed here are already redacted (failure records and log lines are).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(opts: { format: LogFormat; level: LogLevel; write?: (line: string) => void }): Logger {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const emit = (level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const time = new Date().toISOString();
    if (opts.format === 'json') write(JSON.stringify({ time, level, msg, ...fields }));
    else write(`${time} ${level.padEnd(5)} ${msg}${Object.keys(fields).length === 0 ? '' : ` ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
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
