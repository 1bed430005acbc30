// ESLint flat config: typescript-eslint's recommended rules on every TypeScript
// file, without type information so `npm run lint` stays well under a minute on
// two cores. Formatting is Prettier's job (eslint-config-prettier turns off the
// stylistic rules that would fight it).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // assembly/ is AssemblyScript (decorators on functions, <T> casts): asc type-checks it, ESLint cannot parse it.
  { ignores: ['assembly/', 'dist/', 'build/', 'node_modules/', 'coverage/', 'data/', '.tmp/', 'bench/results/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The dashboard runs in the browser.
    files: ['web/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // AssemblyScript: its own types (i32, f64, usize…) and builtins are globals to ESLint.
    files: ['assembly/**/*.ts'],
    rules: { 'no-undef': 'off', '@typescript-eslint/no-unused-vars': 'off' },
  },
);
