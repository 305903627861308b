import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { thrown } from '../../test/helpers/thrown.js';
import type { BoxError } from '../errors/box-error.js';
import { interpolate, loadConfig } from './load-config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const write = (content: string): string => {
  const d = mkdtempSync(join(tmpdir(), 'mcp-box-config-'));
  dirs.push(d);
  writeFileSync(join(d, 'mcp-box.json'), content);
  return join(d, 'mcp-box.json');
};

describe('interpolate', () => {
  it('replaces ${VAR}, uses :- defaults, keeps $${ literal, recurses into arrays and objects', () => {
    expect(
      interpolate({ a: 'x-${T}-y', b: ['${T}', 1, true], c: { d: '${NOPE:-fallback}' }, e: '$${T}' }, { T: 'tok' }, ''),
    ).toEqual({
      a: 'x-tok-y',
      b: ['tok', 1, true],
      c: { d: 'fallback' },
      e: '${T}',
    });
  });

  it('names the field of a missing variable', () => {
    const error = thrown(() => interpolate({ server: { token: '${MCP_BOX_TOKEN_UNSET_X}' } }, {}, ''));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', phase: 'config' });
    expect(error.message).toContain('server.token');
    expect(error.message).toContain('MCP_BOX_TOKEN_UNSET_X');
  });
});

describe('loadConfig', () => {
  it('loads a Claude Desktop style config unchanged, with the state dir beside it', () => {
    const path = write(
      JSON.stringify({ mcpServers: { weather: { command: 'python', args: ['server.py'], env: { API_KEY: '${K}' } } } }),
    );
    const loaded = loadConfig(path, { K: 'secret' });
    expect(loaded.config.mcpServers.weather?.env).toEqual({ API_KEY: 'secret' });
    expect(loaded.stateDir).toBe(join(loaded.configDir, '.mcp-box'));
  });

  it('rejects unknown keys and bad values with the field path', () => {
    const bad = thrown(() =>
      loadConfig(write(JSON.stringify({ mcpServers: { w: { command: 'x', box: { memoryMb: 1 } } }, bogus: 1 }))),
    );
    expect(bad.message).toContain('mcpServers.w.box.memoryMb');
    expect(bad.message).toContain('"bogus"');
  });

  it(
    'refuses a server that would stage the config folder, the state folder or another server folder, naming the ' +
      'server and the rule',
    () => {
      const configPath = write('{}');
      const dir = dirname(configPath);
      mkdirSync(join(dir, 'servers', 'a', 'sub'), { recursive: true });
      const box = { allowedRoots: [dirname(dir)] };
      const refused = (mcpServers: Record<string, unknown>, extra: Record<string, unknown> = {}): BoxError => {
        writeFileSync(configPath, JSON.stringify({ mcpServers, box, ...extra }));
        return thrown(() => loadConfig(configPath));
      };
      expect(refused({ greedy: { command: 'cat', box: { hostPath: '.' } } })).toMatchObject({
        code: 'HOST_PATH_DENIED',
        phase: 'workspace_stage',
        message: expect.stringMatching(/^mcpServers\.greedy: Host folder .* it holds the config folder/) as unknown,
      });
      expect(refused({ greedy: { command: 'cat', args: [configPath] } }).message).toMatch(
        /^mcpServers\.greedy: .* it holds the config folder/,
      );
      expect(
        refused({ greedy: { command: 'cat', box: { hostPath: 'servers' } } }, { state: { dir: 'servers/state' } })
          .message,
      ).toMatch(/it holds the state folder/);
      expect(
        refused({
          a: { command: 'cat', box: { hostPath: 'servers/a' } },
          b: { command: 'cat', box: { hostPath: 'servers/a/sub' } },
        }).message,
      ).toMatch(/^mcpServers\.b: .* overlaps the folder of server "a"/);
      writeFileSync(
        configPath,
        JSON.stringify({ mcpServers: { a: { command: 'cat', box: { hostPath: 'servers/a' } } }, box }),
      );
      expect(loadConfig(configPath).config.mcpServers.a).toBeDefined();
    },
  );

  it('says which file is not JSON, or missing', () => {
    expect(thrown(() => loadConfig(write('{ not json')))).toMatchObject({
      message: expect.stringContaining('is not valid JSON') as unknown,
    });
    expect(thrown(() => loadConfig('/nonexistent/mcp-box.json')).message).toContain(
      'Cannot read the config file /nonexistent/mcp-box.json',
    );
  });
});
