import { describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { checkRequirements } from './requirements.js';

const HASH_A = `sha256:${'a'.repeat(64)}`;
const HASH_B = `sha256:${'b'.repeat(64)}`;

function rejection(rel: string, text: string): BoxError {
  try {
    checkRequirements(rel, text);
  } catch (err) {
    expect(err).toBeInstanceOf(BoxError);
    return err as BoxError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('checkRequirements: accepted files', () => {
  it.each([
    { name: 'plain specifiers', text: 'requests\nhttpx==0.27.0\npydantic>=2,<3\nmcp~=1.2\nfoo!=1.0\n' },
    { name: 'extras', text: 'uvicorn[standard]>=0.30\nfastapi[all]\n' },
    { name: 'environment markers', text: 'tomli>=2; python_version < "3.11"\npywin32 ; sys_platform == "win32"\n' },
    {
      name: 'hashes on continuation lines',
      text: `requests==2.32.3 \\\n    --hash=${HASH_A} \\\n    --hash=${HASH_B}\n    # via -r requirements.in\n`,
    },
    { name: 'a hash on the same line', text: `idna==3.7 --hash=${HASH_A}\n` },
    {
      name: 'comments and blank lines',
      text: '# a comment\n\n   \nrequests  # inline comment\n\t# indented comment\n',
    },
    { name: 'CRLF line endings', text: 'requests\r\nhttpx\r\n' },
    { name: 'an editable install of the folder itself', text: '-e .\n' },
    { name: 'an editable install of a subfolder', text: '--editable ./packages/core\n' },
    { name: 'a local path inside the folder', text: './local/pkg\n' },
    { name: 'a local path inside the folder with extras', text: './local/pkg[extra]\n' },
    { name: 'a local path inside the folder with a marker', text: './local/pkg; python_version >= "3.10"\n' },
    { name: 'a direct URL reference', text: 'pkg @ https://example.com/pkg-1.0-py3-none-any.whl\n' },
    { name: 'an empty file', text: '' },
    { name: 'a # inside a URL fragment is not a comment', text: 'pkg @ https://example.com/pkg.zip#sha256=abc\n' },
  ])('$name', ({ text }) => {
    expect(checkRequirements('requirements.txt', text)).toEqual({ includes: [] });
  });
});

describe('checkRequirements: includes', () => {
  it.each([
    { name: '-r at the root', rel: 'requirements.txt', text: '-r base.txt\n', includes: ['base.txt'] },
    {
      name: '--requirement with a space',
      rel: 'requirements.txt',
      text: '--requirement base.txt\n',
      includes: ['base.txt'],
    },
    { name: '--requirement=', rel: 'requirements.txt', text: '--requirement=base.txt\n', includes: ['base.txt'] },
    {
      name: '-r relative to the file’s folder',
      rel: 'reqs/prod.txt',
      text: '-r common.txt\n',
      includes: ['reqs/common.txt'],
    },
    { name: '-r ./ normalised', rel: 'reqs/prod.txt', text: '-r ./sub/../common.txt\n', includes: ['reqs/common.txt'] },
    { name: '-r ../ that stays inside', rel: 'reqs/prod.txt', text: '-r ../base.txt\n', includes: ['base.txt'] },
    {
      name: 'several includes in order, with a trailing comment',
      rel: 'requirements.txt',
      text: '-r a.txt  # first\nrequests\n-r b/c.txt\n',
      includes: ['a.txt', 'b/c.txt'],
    },
    {
      name: '-c constraints inside the folder',
      rel: 'requirements.txt',
      text: '-c constraints.txt\nrequests\n',
      includes: ['constraints.txt'],
    },
    { name: '--constraint', rel: 'reqs/r.txt', text: '--constraint pins.txt\n', includes: ['reqs/pins.txt'] },
  ])('$name', ({ rel, text, includes }) => {
    expect(checkRequirements(rel, text).includes).toEqual(includes);
  });
});

describe('checkRequirements: rejected lines', () => {
  it.each([
    {
      name: '-r outside the folder',
      rel: 'requirements.txt',
      text: '-r ../x.txt',
      why: /includes a file outside the server folder/,
    },
    {
      name: '-r outside from a subfolder',
      rel: 'reqs/r.txt',
      text: '-r ../../x.txt',
      why: /includes a file outside the server folder/,
    },
    {
      name: '-r with an absolute path',
      rel: 'requirements.txt',
      text: '-r /etc/requirements.txt',
      why: /includes a file outside the server folder/,
    },
    {
      name: '-r with a URL',
      rel: 'requirements.txt',
      text: '-r https://example.com/r.txt',
      why: /includes a file outside the server folder/,
    },
    {
      name: '-r without a file',
      rel: 'requirements.txt',
      text: '-r',
      why: /includes a file outside the server folder/,
    },
    {
      name: '-c outside the folder',
      rel: 'requirements.txt',
      text: '-c ../constraints.txt',
      why: /includes a file outside the server folder/,
    },
    { name: '-i', rel: 'requirements.txt', text: '-i https://evil.example/simple', why: /change the package index/ },
    {
      name: '--index-url',
      rel: 'requirements.txt',
      text: '--index-url https://evil.example/simple',
      why: /change the package index/,
    },
    {
      name: '--index-url=',
      rel: 'requirements.txt',
      text: '--index-url=https://evil.example/simple',
      why: /change the package index/,
    },
    {
      name: '--extra-index-url',
      rel: 'requirements.txt',
      text: '--extra-index-url https://evil.example/simple',
      why: /change the package index/,
    },
    { name: '--find-links', rel: 'requirements.txt', text: '--find-links ./wheels', why: /change the package index/ },
    { name: '-f', rel: 'requirements.txt', text: '-f https://evil.example/wheels', why: /change the package index/ },
    {
      name: '--trusted-host',
      rel: 'requirements.txt',
      text: '--trusted-host evil.example',
      why: /change the package index/,
    },
    { name: '--no-index', rel: 'requirements.txt', text: '--no-index', why: /change the package index/ },
    {
      name: 'upper-case option',
      rel: 'requirements.txt',
      text: '--INDEX-URL https://evil.example',
      why: /change the package index/,
    },
    {
      name: '-e with a git URL',
      rel: 'requirements.txt',
      text: '-e git+https://github.com/x/y.git#egg=y',
      why: /editable VCS or URL installs/,
    },
    {
      name: '-e with an https URL',
      rel: 'requirements.txt',
      text: '-e https://example.com/y.zip',
      why: /editable VCS or URL installs/,
    },
    {
      name: '-e outside the folder',
      rel: 'requirements.txt',
      text: '-e ../x',
      why: /editable install outside the server folder/,
    },
    {
      name: '-e with an absolute path',
      rel: 'requirements.txt',
      text: '-e /opt/pkg',
      why: /editable install outside the server folder/,
    },
    {
      name: '-e with a file: URL',
      rel: 'requirements.txt',
      text: '-e file:///opt/pkg',
      why: /editable VCS or URL installs/,
    },
    { name: 'file:///x', rel: 'requirements.txt', text: 'file:///x/pkg.whl', why: /file: URLs are not allowed/ },
    {
      name: 'pkg @ file:///x',
      rel: 'requirements.txt',
      text: 'pkg @ file:///x/pkg',
      why: /file: URLs are not allowed/,
    },
    { name: 'pkg@file:///x', rel: 'requirements.txt', text: 'pkg@file:///x/pkg', why: /file: URLs are not allowed/ },
    { name: '../pkg', rel: 'requirements.txt', text: '../pkg', why: /local path outside the server folder/ },
    {
      name: '../pkg from a subfolder file stays relative to the file',
      rel: 'reqs/r.txt',
      text: '../../pkg',
      why: /local path outside the server folder/,
    },
    { name: '/abs/pkg', rel: 'requirements.txt', text: '/opt/pkg', why: /local path outside the server folder/ },
    {
      name: 'an unknown option',
      rel: 'requirements.txt',
      text: '--some-new-option',
      why: /unsupported option --some-new-option/,
    },
  ])('$name', ({ rel, text, why }) => {
    const err = rejection(rel, `requests\n${text}\n`);
    expect(err.code).toBe('INVALID_REQUIREMENT');
    expect(err.phase).toBe('dep_install');
    expect(err.message).toMatch(why);
    expect(err.message.startsWith(`${rel}:2: `)).toBe(true);
    expect(err.message).toContain(JSON.stringify(text.trim()));
    expect(err.details).toEqual({ file: rel, line: 2 });
  });

  it.each([
    { name: 'a first-line rejection', text: '--no-index\nrequests\n', line: 1 },
    { name: 'after comments and blank lines', text: '# c\n\nrequests\n\n--no-index\n', line: 5 },
    {
      name: 'a continuation reports its first line',
      text: 'requests\nfoo==1 \\\n  --hash=x \\\n  ; python_version<"3" \\\n  @ file:///x\n',
      line: 2,
    },
    { name: 'after a continued line', text: `a==1 \\\n  --hash=${HASH_A}\n-i https://x\n`, line: 3 },
    { name: 'CRLF', text: 'requests\r\nhttpx\r\n-i https://x\r\n', line: 3 },
  ])('reports file:line — $name', ({ text, line }) => {
    const err = rejection('sub/requirements.txt', text);
    expect(err.message.startsWith(`sub/requirements.txt:${line}: `)).toBe(true);
    expect(err.details.line).toBe(line);
  });

  it('a comment after a bad option does not hide it', () => {
    expect(rejection('requirements.txt', '--index-url https://x  # mirror').message).toMatch(
      /change the package index/,
    );
  });

  it('a commented-out bad option is fine', () => {
    expect(checkRequirements('requirements.txt', '# --index-url https://x\n#-r ../x.txt\nrequests\n')).toEqual({
      includes: [],
    });
  });

  it('clips very long lines in the message', () => {
    const long = `--index-url https://${'x'.repeat(500)}`;
    const err = rejection('requirements.txt', long);
    expect(err.message).toContain(JSON.stringify(long.slice(0, 200)));
    expect(err.message).not.toContain('x'.repeat(300));
  });
});
