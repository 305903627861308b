import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (works from src/ and from dist/). */
export const MCP_BOX_VERSION: string = (() => {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (parsed.name === 'mcp-box' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
})();
