// Lint rules. The layering of src/ is the table `layers` below: each folder
// may import only the folders its line names (and itself). src/core and
// src/base are also pure: no node:* modules, no package that touches the
// disk, the network or the clock. test/layers.test.ts checks that the table
// has no cycle and that the code imports only what it allows.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'node:*',
  'fs',
  'fs/*',
  'path',
  'os',
  'child_process',
  'net',
  'http',
  'http2',
  'tls',
  'crypto',
  'worker_threads',
  'stream',
  'events',
];
const ioPackages = [
  'better-sqlite3',
  'pino',
  'pino-pretty',
  '@napi-rs/*',
  '@peculiar/*',
  'commander',
  'ignore',
  'etcd3',
  'cockatiel',
];

/**
 * Which folders of src/ each folder may import, lowest layer first: the
 * architecture in one table (docs/architecture.md draws it). Tests
 * (`*.test.ts`) may import anything.
 */
export const layers = {
  base: [],
  core: ['base'],
  confined: ['base', 'core'],
  store: ['base', 'core'],
  identity: ['base', 'core'],
  watch: ['base', 'core', 'confined'],
  locks: ['base', 'core'],
  scan: ['base', 'core', 'confined', 'store'],
  folder: ['base', 'core', 'confined', 'store'],
  config: ['base', 'core', 'identity'],
  peer: ['base', 'core', 'identity', 'store', 'locks'],
  sync: ['base', 'core', 'confined', 'store', 'scan', 'folder', 'peer'],
  api: ['base', 'core', 'config'],
  daemon: [
    'base',
    'core',
    'confined',
    'store',
    'watch',
    'scan',
    'folder',
    'config',
    'locks',
    'peer',
    'sync',
    'api',
  ],
  cli: ['base', 'core', 'config', 'api', 'daemon'],
  testing: ['base', 'core', 'store', 'scan', 'api'],
};

/** One lint block per folder of `layers`: imports of other folders are refused. */
function layerRules() {
  const folders = Object.keys(layers);
  return folders.map((folder) => {
    const allowed = new Set([folder, ...layers[folder]]);
    const refused = folders.filter((f) => !allowed.has(f));
    const pure = folder === 'core' || folder === 'base';
    const patterns = [
      ...(pure
        ? [
            {
              group: nodeBuiltins,
              message: 'The pure core does no I/O: pass data in, return data out.',
            },
            {
              group: ioPackages,
              message: 'The pure core does no I/O: keep this package at the edges.',
            },
          ]
        : []),
      ...(refused.length === 0
        ? []
        : [
            {
              group: refused.map((f) => `../${f}/*`),
              message: `src/${folder} may import only ${[...allowed].filter((f) => f !== folder).join(', ') || 'nothing else in src/'} (the layers table in eslint.config.js).`,
            },
          ]),
    ];
    return {
      files: [`src/${folder}/**/*.ts`],
      ignores: ['src/**/*.test.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns }] },
    };
  });
}

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The web page runs in a browser; its build config runs in Node.
    files: ['web/src/**/*.ts', 'web/src/**/*.tsx'],
    languageOptions: { globals: globals.browser },
  },
  {
    // The size rule: no file in src/ over 500 lines, no function over 120.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'max-lines': ['error', { max: 500 }],
      'max-lines-per-function': ['error', { max: 120 }],
    },
  },
  ...layerRules(),
);
