import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  DEFAULT_HTTP_PATH,
  DEFAULT_INSTALL_COMMAND,
  DEFAULT_ROLLOUT,
  DEFAULT_STDIO,
  DEFAULT_STEP_TIMEOUT_SEC,
  ManifestError,
  loadManifest,
  parseManifest,
} from '../../core/manifest.ts';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function serviceDir(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcpship-manifest-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

/** The smallest valid manifest: every optional field left to its default. */
function minimal(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'calc',
    version: '1.2.3',
    transport: 'stdio',
    start: { command: 'node' },
    steps: { lint: { run: 'npm run lint' }, test: { run: 'npm test' }, build: { run: 'npm run build' } },
    ...overrides,
  };
}

/** Asserts that `fn` throws a ManifestError, and returns it. */
async function manifestError(fn: () => unknown): Promise<ManifestError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ManifestError, nothing was thrown');
}

const FILE = 'services/calc/mcp.json';

test('a minimal stdio manifest loads with every default filled in', async () => {
  const dir = await serviceDir({ 'mcp.json': JSON.stringify(minimal()) });
  const manifest = await loadManifest(dir);
  assert.deepEqual(manifest, {
    name: 'calc',
    version: '1.2.3',
    transport: 'stdio',
    start: { command: 'node', args: [], env: {} },
    passEnv: [],
    install: null,
    steps: {
      lint: { run: 'npm run lint', timeoutSec: 120 },
      test: { run: 'npm test', timeoutSec: 300 },
      build: { run: 'npm run build', timeoutSec: 300 },
    },
    rollout: DEFAULT_ROLLOUT,
    stdio: DEFAULT_STDIO,
  });
  assert.deepEqual(DEFAULT_STDIO, { statelessPool: 2, warmSpares: 1, maxSessions: 32, sessionIdleSec: 600 });
  assert.deepEqual(DEFAULT_ROLLOUT.steps, [10, 25, 50, 100]);
  assert.equal(DEFAULT_ROLLOUT.intervalSec, 30);
  assert.deepEqual(DEFAULT_STEP_TIMEOUT_SEC, { lint: 120, test: 300, build: 300 });
});

test('an http manifest gets http.path /mcp by default and keeps its own values', async () => {
  const dir = await serviceDir({
    'mcp.json': JSON.stringify(
      minimal({
        transport: 'http',
        description: 'adds numbers',
        start: { command: 'node', args: ['dist/index.js'], env: { LOG_LEVEL: 'debug' } },
        steps: {
          lint: { run: 'tsc --noEmit', timeoutSec: 30 },
          test: { run: 'node --test' },
          build: { run: 'tsc', timeoutSec: 600 },
        },
      }),
    ),
  });
  const manifest = await loadManifest(dir);
  assert.equal(manifest.transport, 'http');
  assert.ok(manifest.transport === 'http');
  assert.equal(manifest.http.path, DEFAULT_HTTP_PATH);
  assert.equal(DEFAULT_HTTP_PATH, '/mcp');
  assert.equal(manifest.description, 'adds numbers');
  assert.deepEqual(manifest.start, { command: 'node', args: ['dist/index.js'], env: { LOG_LEVEL: 'debug' } });
  assert.deepEqual(
    Object.values(manifest.steps).map((s) => s.timeoutSec),
    [30, 300, 600],
  );

  const custom = parseManifest(minimal({ transport: 'http', http: { path: '/v1/mcp' } }), FILE);
  assert.ok(custom.transport === 'http');
  assert.equal(custom.http.path, '/v1/mcp');
});

test('stdio settings: partial values keep the other defaults; only stdio services get them', () => {
  const custom = parseManifest(minimal({ stdio: { statelessPool: 4, warmSpares: 0 } }), FILE);
  assert.ok(custom.transport === 'stdio');
  assert.deepEqual(custom.stdio, { ...DEFAULT_STDIO, statelessPool: 4, warmSpares: 0 });
  const http = parseManifest(minimal({ transport: 'http' }), FILE);
  assert.equal('stdio' in http, false);
});

test('passEnv: names pass; mcpship\'s own settings and cloud credentials are refused by name', async () => {
  assert.deepEqual(parseManifest(minimal({ passEnv: ['WEATHER_API_KEY', 'http_proxy'] }), FILE).passEnv, ['WEATHER_API_KEY', 'http_proxy']);
  const err = await manifestError(() => parseManifest(minimal({ passEnv: ['MCPSHIP_ADMIN_TOKEN', 'MONGODB_URI', 'AWS_SECRET_ACCESS_KEY', 'bad name'] }), FILE));
  assert.match(err.message, /passEnv\[0\]: MCPSHIP_ADMIN_TOKEN is mcpship's own setting or a credential of the machine it runs on; it is never passed/);
  assert.match(err.message, /passEnv\[1\]: MONGODB_URI is mcpship's own/);
  assert.match(err.message, /passEnv\[2\]: AWS_SECRET_ACCESS_KEY is/);
  assert.match(err.message, /passEnv\[3\]: expected an environment variable name/);
});

test('install: default npm ci only with a package-lock.json; an explicit command or null wins', async () => {
  const withLock = await serviceDir({ 'mcp.json': JSON.stringify(minimal()), 'package-lock.json': '{}' });
  assert.equal((await loadManifest(withLock)).install, DEFAULT_INSTALL_COMMAND);
  assert.equal(DEFAULT_INSTALL_COMMAND, 'npm ci --no-audit --no-fund');

  const withoutLock = await serviceDir({ 'mcp.json': JSON.stringify(minimal()) });
  assert.equal((await loadManifest(withoutLock)).install, null);

  const explicit = await serviceDir({ 'mcp.json': JSON.stringify(minimal({ install: 'pnpm install --frozen-lockfile' })), 'package-lock.json': '{}' });
  assert.equal((await loadManifest(explicit)).install, 'pnpm install --frozen-lockfile');

  const off = await serviceDir({ 'mcp.json': JSON.stringify(minimal({ install: null })), 'package-lock.json': '{}' });
  assert.equal((await loadManifest(off)).install, null);
});

test('the sample services have valid manifests', async () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const hello = await loadManifest(path.join(root, 'examples/services/hello-world'));
  assert.equal(hello.name, 'hello-world');
  assert.equal(hello.transport, 'stdio');
  const calc = await loadManifest(path.join(root, 'examples/services/calculator'));
  assert.equal(calc.name, 'calculator');
  assert.ok(calc.transport === 'http');
  assert.equal(calc.http.path, '/mcp');
});

test('a missing file names the file', async () => {
  const dir = await serviceDir();
  const err = await manifestError(() => loadManifest(dir));
  const file = path.join(dir, 'mcp.json');
  assert.equal(err.file, file);
  assert.match(err.message, new RegExp(`^${file.replaceAll(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not found`));
});

test('invalid JSON names the file and says so', async () => {
  const dir = await serviceDir({ 'mcp.json': '{ "name": "calc", ' });
  const err = await manifestError(() => loadManifest(dir));
  assert.ok(err.message.startsWith(`${path.join(dir, 'mcp.json')}: invalid JSON: `), err.message);
});

test('the message uses the service dir as the caller gave it', async () => {
  const dir = await serviceDir({ 'mcp.json': JSON.stringify(minimal({ version: 'one' })) });
  const relative = path.relative(process.cwd(), dir);
  const err = await manifestError(() => loadManifest(relative));
  assert.equal(err.message, `${path.join(relative, 'mcp.json')}: version: expected a semver version x.y.z, e.g. "1.0.0"`);
});

test('each kind of bad field gets its own clear line', async () => {
  const cases: [Record<string, unknown>, string][] = [
    [minimal({ steps: { lint: { run: 'x' }, test: { run: 'y', timeoutSec: 0 }, build: { run: 'z' } } }), 'steps.test.timeoutSec: expected a positive integer'],
    [minimal({ steps: { lint: { run: 'x' }, test: { run: 'y', timeoutSec: 2.5 }, build: { run: 'z' } } }), 'steps.test.timeoutSec: expected a positive integer'],
    [minimal({ steps: { lint: { run: 'x' }, test: { run: 'y', timeoutSec: '60' } , build: { run: 'z' } } }), 'steps.test.timeoutSec: expected a positive integer'],
    [minimal({ steps: { lint: { run: '  ' }, test: { run: 'y' }, build: { run: 'z' } } }), 'steps.lint.run: expected a non-empty string'],
    [minimal({ steps: { lint: { run: 'x' }, test: { run: 'y' } } }), 'steps.build: required'],
    [minimal({ steps: { lint: { run: 'x', timeout: 5 }, test: { run: 'y' }, build: { run: 'z' } } }), 'steps.lint: unknown field "timeout"'],
    [minimal({ name: 'Calc_1' }), 'name: expected lower-case letters, digits and "-", 1-63 characters, starting with a letter or digit'],
    [minimal({ name: '-calc' }), 'name: expected lower-case letters, digits and "-", 1-63 characters, starting with a letter or digit'],
    [minimal({ name: 'a'.repeat(64) }), 'name: expected lower-case letters, digits and "-", 1-63 characters, starting with a letter or digit'],
    [minimal({ version: '1.2' }), 'version: expected a semver version x.y.z, e.g. "1.0.0"'],
    [minimal({ version: '01.2.3' }), 'version: expected a semver version x.y.z, e.g. "1.0.0"'],
    [minimal({ transport: 'sse' }), 'transport: expected "stdio" or "http", got "sse"'],
    [minimal({ transport: undefined }), 'transport: required: expected "stdio" or "http"'],
    [minimal({ start: { args: ['x'] } }), 'start.command: required'],
    [minimal({ start: { command: 'node', args: ['ok', 7] } }), 'start.args[1]: expected a string'],
    [minimal({ start: { command: 'node', env: { DEBUG: 1 } } }), 'start.env.DEBUG: expected a string value'],
    [minimal({ transport: 'http', start: { command: 'node', env: { PORT: '80' } } }), 'start.env.PORT: set by the runner for http services; remove it'],
    [minimal({ http: { path: '/mcp' } }), 'http: only allowed with transport "http"'],
    [minimal({ transport: 'http', http: { path: 'mcp' } }), 'http.path: expected a URL path starting with "/", e.g. "/mcp"'],
    [minimal({ transport: 'http', stdio: {} }), 'stdio: only allowed with transport "stdio"'],
    [minimal({ stdio: { statelessPool: 0 } }), 'stdio.statelessPool: expected a positive integer'],
    [minimal({ stdio: { statelessPool: 17 } }), 'stdio.statelessPool: expected at most 16'],
    [minimal({ stdio: { warmSpares: -1 } }), 'stdio.warmSpares: expected an integer 0-8'],
    [minimal({ stdio: { maxSessions: 1.5 } }), 'stdio.maxSessions: expected a positive integer'],
    [minimal({ stdio: { sessionIdleSec: '60' } }), 'stdio.sessionIdleSec: expected a positive integer'],
    [minimal({ stdio: { poolSize: 2 } }), 'stdio: unknown field "poolSize"'],
    [minimal({ install: '' }), 'install: expected a non-empty string'],
    [minimal({ image: 'node:20' }), '(top level) unknown field "image"'],
  ];
  for (const [raw, expected] of cases) {
    const err = await manifestError(() => parseManifest(raw, FILE));
    const line = expected.startsWith('(top level) ') ? `${FILE}: ${expected.slice('(top level) '.length)}` : `${FILE}: ${expected}`;
    assert.equal(err.message, line, `for ${JSON.stringify(raw)}`);
    assert.equal(err.issues.length, 1);
  }
});

test('several bad fields are all reported, one line each, and a non-object is refused', async () => {
  const err = await manifestError(() => parseManifest({ name: 'calc', transport: 'stdio', steps: { lint: {}, test: { run: 'y' }, build: { run: 'z', timeoutSec: -1 } } }, FILE));
  assert.deepEqual(err.message.split('\n'), [
    `${FILE}: version: required`,
    `${FILE}: start: required`,
    `${FILE}: steps.lint.run: required`,
    `${FILE}: steps.build.timeoutSec: expected a positive integer`,
  ]);
  assert.deepEqual(err.issues[0], { field: 'version', message: 'required' });

  const notObject = await manifestError(() => parseManifest(['calc'], FILE));
  assert.equal(notObject.message, `${FILE}: expected a JSON object`);
  assert.deepEqual(notObject.issues, [{ field: '', message: 'expected a JSON object' }]);
});
