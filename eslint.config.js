// @ts-check
import tseslint from 'typescript-eslint';

// Promise lints matter here: an un-awaited isImmutable() in the prior art was always truthy and indexed every file.
export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/'] },
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': [
        'error',
        {
          // One import site per side-effecting library (house style): these are the only files allowed to import them.
          paths: [
            {
              name: 'execa',
              message:
                'only src/attributes/helper.ts, src/lock/flock.ts, src/index/commit.ts and src/systemd/systemctl.ts ' +
                'spawn processes',
            },
            { name: 'chokidar', message: 'only src/watcher/watcher.ts watches' },
            { name: 'conf', message: 'only src/config/load.ts reads the config' },
            { name: 'pino', message: 'only src/log/logger.ts builds loggers' },
            { name: 'micromatch', message: 'only src/remote/patterns.ts matches paths' },
          ],
        },
      ],
    },
  },
  { files: ['src/attributes/helper.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/systemd/systemctl.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/lock/flock.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/index/commit.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/watcher/watcher.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/config/load.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/log/logger.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/remote/patterns.ts'], rules: { 'no-restricted-imports': 'off' } },
);
