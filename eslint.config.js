// ESLint (npm run lint): typescript-eslint's strict, type-aware rules for the TypeScript, the
// recommended JavaScript rules for bin/ and the dashboard page. Formatting is Prettier's job.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['dist/', 'node_modules/', 'data/', 'spark/.venv', 'spark/jars/', 'bench/results/', 'docs/', 'test-output/'],
  },
  {
    files: ['**/*.ts'],
    extends: [eslint.configs.recommended, tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      // One project for every TypeScript file: tsconfig.json includes src, test, bench, deploy and spark/run-local.ts.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers read naturally in messages; objects, undefined and null still need an explicit String().
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      // `(x) => f(x)` callbacks and `return f()` early exits from void functions are this code's idiom.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true }],
      // A leading underscore marks a binding kept on purpose: a counted loop variable, a destructured-away key.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // noUncheckedIndexedAccess (tsconfig.json) types every index read as possibly undefined; `!` is how this
      // code states an index known to be in bounds, where a runtime check would be dead code (some per row).
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // bin/ecomstream.js: the Node launcher, plain JavaScript.
    files: ['bin/**/*.js'],
    extends: [eslint.configs.recommended],
    languageOptions: { sourceType: 'module', globals: { process: 'readonly' } },
  },
  {
    // The dashboard page's script, a browser module loaded after uPlot's IIFE (src/dashboard/public/index.html).
    // Its browser globals are listed by name rather than with the `globals` package: it uses only these.
    files: ['src/dashboard/public/**/*.js'],
    extends: [eslint.configs.recommended],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['document', 'Node', 'getComputedStyle', 'ResizeObserver', 'EventSource', 'localStorage', 'setInterval', 'uPlot'].map((name) => [name, 'readonly']),
      ),
    },
  },
  {
    // This file itself.
    files: ['eslint.config.js'],
    extends: [eslint.configs.recommended],
    languageOptions: { sourceType: 'module' },
  },
);
