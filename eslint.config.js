import tseslint from 'typescript-eslint';

// The layers (docs/architecture.md), each importing only those below it:
//   cli, daemon > server > host | browser > services > runtime;  console > browser
// runtime, services (but services/node), browser and console run in browsers:
// no node: modules and no Node globals there (tsconfig.web.json checks the
// same without Node's types, through every import they reach).
const NODE = { group: ['node:*'], message: 'This code runs in browsers too: nothing from Node.' };
const above = (...folders) => ({
  regex: `(^|/)(${folders.join('|')})/`,
  message: `Imports go down the layers: cli > server > host | browser > services > runtime (${folders.join(', ')} are above or beside this one).`,
});
const SERVICES_NODE = { regex: '(^|/)services/node/', message: 'services/node needs Node: only the Node host and above may use it.' };
const NODE_GLOBALS = ['process', 'Buffer', 'require', '__dirname', '__filename', 'setImmediate', 'global'];

function layer(files, patterns, { web = false, ignores = [] } = {}) {
  return {
    files,
    ignores: ['**/*.test.ts', ...ignores],
    rules: {
      'no-restricted-imports': ['error', { patterns: web ? [NODE, ...patterns] : patterns }],
      ...(web ? { 'no-restricted-globals': ['error', ...NODE_GLOBALS] } : {}),
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', '.cache/', 'guest/**/*.js', 'coverage/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  layer(['src/runtime/**/*.ts'], [above('services', 'host', 'browser', 'console', 'server', 'cli', 'daemon')], { web: true }),
  layer(['src/services/**/*.ts'], [above('host', 'browser', 'console', 'server', 'cli', 'daemon'), SERVICES_NODE], {
    web: true,
    ignores: ['src/services/node/**'],
  }),
  // services/node (Node bindings of services) sits in the services layer without the browser's constraints.
  layer(['src/services/node/**/*.ts'], [above('host', 'browser', 'console', 'server', 'cli', 'daemon')]),
  layer(['src/host/**/*.ts'], [above('browser', 'console', 'server', 'cli', 'daemon')]),
  layer(['src/browser/**/*.ts'], [above('console', 'server', 'cli', 'daemon'), SERVICES_NODE], { web: true }),
  layer(['src/console/**/*.ts'], [above('host', 'server', 'cli', 'daemon'), SERVICES_NODE], { web: true }),
  layer(['src/server/**/*.ts'], [above('browser', 'console', 'cli', 'daemon')]),
  // Inside the server (docs/architecture.md): shards > http > api > exec | store > config | obs | util.
  layer(['src/server/http/**/*.ts'], [above('browser', 'console', 'cli', 'daemon', 'shards')]),
  layer(['src/server/api/**/*.ts'], [above('browser', 'console', 'cli', 'daemon', 'shards', 'http')]),
  layer(['src/server/{exec,store}/**/*.ts'], [above('browser', 'console', 'cli', 'daemon', 'shards', 'http', 'api')]),
  layer(['src/server/{config,obs,util}/**/*.ts'], [above('browser', 'console', 'cli', 'daemon', 'shards', 'http', 'api', 'exec', 'store')]),
);
