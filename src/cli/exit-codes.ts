/** The exit codes of `mcp-box`, in one place (the help text and the README's CLI section say the same). */
export const EXIT = {
  ok: 0,
  /** A check or an operation failed (a `failed` server, a tool error, a refused request). */
  failed: 1,
  /** The command line is wrong: unknown command or option, a missing or bad argument. */
  usage: 2,
  /** The Docker engine does not answer (serve, image, reap, doctor). */
  engineUnreachable: 3,
  /** `serve` does not answer at the API URL (the client commands: status, tools, call, logs). */
  serveNotRunning: 4,
} as const;
