/**
 * A small stdio MCP server with no dependencies (nothing to install, so it is ready in moments),
 * for fault-injection tests. It writes stdout with fs.writeSync(1) only, so after `close_stdout`
 * it keeps running with fd 1 closed instead of crashing on a stream error.
 *
 * Tools: echo {text}, add {a,b}, sleep {ms}, close_stdout (closes fd 1, never answers, stays up),
 * exit {code}, fill {path} (writes 1 MiB blocks until the write fails; the error is the result),
 * write_tmpdir (writes and reads back 1 MiB in $TMPDIR).
 * Env: EXIT_ON_LONG_LINE=<bytes>: exit 3 as soon as a line longer than that is being read.
 */
import { tempFolder, type TempFolder } from './folders.js';

export const FAULT_SERVER_SOURCE =
  String.raw`'use strict';
const fs = require('node:fs');
const path = require('node:path');

function send(message) {
  const bytes = Buffer.from(JSON.stringify(message) + '\n');
  try {
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(1, bytes, off);
  } catch (err) {
    process.stderr.write('stdout write failed: ' + err.code + '\n');
  }
}
const text = (t, isError) => Object.assign({ content: [{ type: 'text', text: t }] }, isError ? { isError: true } : {});
const TOOLS = ['echo', 'add', 'sleep', 'close_stdout', 'exit', 'fill', 'write_tmpdir']` +
  String.raw`.map((name) => ({ name, inputSchema: { type: 'object' } }));
const longLine = Number(process.env.EXIT_ON_LONG_LINE || 0);

function call(name, a, reply) {
  switch (name) {
    case 'echo': return reply(text(a.text));
    case 'add': return reply(text(String(a.a + a.b)));
    case 'sleep': return void setTimeout(() => reply(text('slept ' + a.ms)), a.ms);
    case 'close_stdout':
      process.stderr.write('closing stdout, staying alive\n');
      fs.closeSync(1);
      setInterval(() => undefined, 1 << 30);
      return;
    case 'exit':
      process.stderr.write('exiting with ' + a.code + ' on request\n');
      setTimeout(() => process.exit(a.code), 10);
      return reply(text('bye'));
    case 'fill': {
      const block = Buffer.alloc(1 << 20, 120);
      let fd = -1;
      let mib = 0;
      try {
        fd = fs.openSync(a.path, 'w');
        for (;;) { fs.writeSync(fd, block); mib++; }
      } catch (err) {
        return reply(text(err.code + ' after ' + mib + ' MiB: ' + err.message, true));
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
    }
    case 'write_tmpdir': {
      const file = path.join(process.env.TMPDIR, 'probe.bin');
      fs.writeFileSync(file, Buffer.alloc(1 << 20, 121));
      const size = fs.readFileSync(file).length;
      fs.unlinkSync(file);
      return reply(text('wrote and read ' + size + ' bytes in ' + process.env.TMPDIR));
    }
    default: return reply(text('no tool ' + name, true));
  }
}

function handle(msg) {
  if (msg.id === undefined || msg.id === null) return;
  const reply = (result) => send({ jsonrpc: '2.0', id: msg.id, result });
  const p = msg.params || {};
  switch (msg.method) {
    case 'initialize': return reply({ protocolVersion: p.protocolVersion || '2025-06-18', ` +
  String.raw`capabilities: { tools: {} }, serverInfo: { name: 'fault-fixture', version: '1.0' } });
    case 'ping': return reply({});
    case 'tools/list': return reply({ tools: TOOLS });
    case 'tools/call': return call(p.name, p.arguments || {}, reply);
    default: return send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no method ' + msg.method } });
  }
}

let buffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    if (line.trim() !== '') handle(JSON.parse(line));
  }
  if (longLine > 0 && buffer.length > longLine) {
    process.stderr.write('reading a line longer than ' + longLine + ` +
  String.raw`' bytes (' + buffer.length + ' so far): exiting with 3\n');
    process.exit(3);
  }
});
process.stdin.on('end', () => process.exit(0));
process.stderr.write('fault fixture starting\n');
`;

/** A temp folder holding `server.cjs` (the fault server); more files can be written into it. */
export function faultServerFolder(): TempFolder {
  const f = tempFolder('mcp-box-fault-');
  f.write('server.cjs', FAULT_SERVER_SOURCE);
  return f;
}
