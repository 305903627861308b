/**
 * Python fixtures built in the test, with no index: a pure wheel written with the host's python3
 * zipfile module, and a pyproject package whose PEP 517 backend lives in the project itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { TempFolder } from './folders.js';

/** Writes `<dir>/<name>-<version>-py3-none-any.whl` with one module `<name>` whose greet() returns `greeting`. */
export function buildWheel(dir: string, name: string, version: string, greeting: string): string {
  mkdirSync(dir, { recursive: true });
  const script = `
import sys, zipfile, hashlib, base64
d, name, version, greeting = sys.argv[1:5]
path = f"{d}/{name}-{version}-py3-none-any.whl"
info = f"{name}-{version}.dist-info"
files = {
  f"{name}/__init__.py": f"def greet(*args):\\n    return {greeting!r}\\n",
  f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
  f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: mcp-box-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
with zipfile.ZipFile(path, "w") as z:
  for n, c in files.items():
    z.writestr(n, c)
    h = base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{n},sha256={h},{len(c.encode())}")
  record.append(f"{info}/RECORD,,")
  z.writestr(f"{info}/RECORD", "\\n".join(record) + "\\n")
print(path)
`;
  return execFileSync('python3', ['-c', script, dir, name, version, greeting], { encoding: 'utf8' }).trim();
}

/** A pyproject.toml package `mcpboxpkg` built by an in-tree backend (no build requirements to fetch). */
export function writePyprojectPackage(f: TempFolder, opts: { hang?: boolean } = {}): void {
  f.write(
    'pyproject.toml',
    '[build-system]\nrequires = []\nbuild-backend = "mini_backend"\nbackend-path = ["_build"]\n\n[project]\nname = ' +
      '"mcpboxpkg"\nversion = "1.0"\n',
  );
  f.write('mcpboxpkg/__init__.py', 'def answer():\n    return 42\n');
  f.write(
    '_build/mini_backend.py',
    `import base64, hashlib, os, time, zipfile

NAME, VERSION = "mcpboxpkg", "1.0"

def get_requires_for_build_wheel(config_settings=None):
    ${opts.hang === true ? 'print("backend: thinking forever", flush=True)\n    time.sleep(100000)\n    ' : ''}return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = os.path.join(metadata_directory, f"{NAME}-{VERSION}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as fh:
        fh.write(f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n")
    return os.path.basename(info)

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}/__init__.py": open(os.path.join(NAME, "__init__.py")).read(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: mini\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as z:
        for n, c in files.items():
            z.writestr(n, c)
            h = base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{n},sha256={h},{len(c.encode())}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\\n".join(record) + "\\n")
    return wheel
`,
  );
}
