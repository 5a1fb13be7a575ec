// Lint: ESLint's recommended rules and typescript-eslint's (syntactic only, not type-checked, to
// stay fast: `tsc --noEmit -p .` does the type checks). Formatting is prettier's
// (.prettierrc.json). `npm run lint` runs both; `npm run format` fixes what they can.
import js from '@eslint/js'
import { defineConfig } from 'eslint/config'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'schema/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a value deliberately unused (a parameter an interface requires, a
      // property dropped by destructuring: `const { hash: _hash, ...rest } = entry`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // No line over 120 characters outside strings: prettier breaks code, not comments.
      // (A core rule until ESLint 11; @stylistic/max-len after.)
      'max-len': [
        'error',
        {
          code: 120,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
          ignoreUrls: true,
        },
      ],
    },
  },
)
