/**
 * The little JSON-RPC the relay needs: parse a stdout line once (`parseJsonMessage`), check the
 * shape of a message a peer hands over (`jsonRpcProblem`), and read ids. Nothing here validates a
 * message fully: the relay passes messages through, it does not speak MCP.
 */

/** JSON-RPC error code of the answers the relay gives in the process's place (internal error). */
export const RELAY_ERROR_CODE = -32603;

/** The parsed line when it is a JSON object or array (a message or a batch), else undefined. */
export function parseJsonMessage(line: Buffer): unknown {
  let i = 0;
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  const first = line[i];
  if (first !== 0x7b && first !== 0x5b) return undefined; // '{' or '['
  try {
    return JSON.parse(line.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why `message` is not a JSON-RPC message or batch the relay may write to stdin, or null when it is. */
export function jsonRpcProblem(message: unknown): string | null {
  const one = (m: unknown): string | null => {
    if (!isObject(m)) return 'a message must be a JSON object';
    if (m.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
    const { method, id, result, error } = m;
    if (method === undefined && result === undefined && error === undefined)
      return 'neither a request, a notification nor a response';
    if (method !== undefined && typeof method !== 'string') return 'method must be a string';
    if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number')
      return 'id must be a string or a number';
    return null;
  };
  if (Array.isArray(message)) {
    if (message.length === 0) return 'an empty batch';
    for (const m of message) {
      const p = one(m);
      if (p !== null) return p;
    }
    return null;
  }
  return one(message);
}

/** The id of a single message (null for a batch or a non-object). */
export function idOf(message: unknown): unknown {
  return isObject(message) ? message.id : null;
}

/** The id of a request (a message with a method and a string or number id), else undefined. */
export function requestIdOf(m: unknown): string | number | undefined {
  if (!isObject(m) || typeof m.method !== 'string') return undefined;
  return typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
}
