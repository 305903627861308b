import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.cache/', 'test/fixtures/**/node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // Formatting is prettier's (npm run format; lint checks it with prettier --check): its rules off here,
  // then max-len back on below for what prettier cannot wrap.
  prettier,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: ['error', 'smart'],
      // Prettier wraps code at 120; what it cannot wrap (strings, comments) is wrapped by hand.
      'max-len': [
        'error',
        {
          code: 120,
          tabWidth: 2,
          ignoreUrls: false,
          ignoreStrings: false,
          ignoreTemplateLiterals: false,
          ignoreRegExpLiterals: true,
        },
      ],
    },
  },
  {
    // dockerode is confined to src/runtime/docker/.
    files: ['src/**/*.ts'],
    ignores: ['src/runtime/docker/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'dockerode', message: 'dockerode lives in src/runtime/docker/ only.' }] },
      ],
    },
  },
  {
    files: ['src/cli.ts', 'src/cli/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.{js,mjs}'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: globals.node },
  },
);
