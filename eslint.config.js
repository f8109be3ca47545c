import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'data/**', '.tap/**', 'coverage/**'] }),
  {
    // A promise nobody awaits loses its rejection; one passed where a callback's result is
    // ignored (a listener, a timer) does too. Both need type information.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        // tap queues a subtest itself and reports its failure; awaiting it changes nothing.
        allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }]
      }],
      '@typescript-eslint/no-misused-promises': 'error'
    }
  }
]
