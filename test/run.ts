// The test command: starts the embedded stack once on free ports (global setup), runs every test
// file with node's test runner against it, and stops the stack whatever the outcome.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { loadConfig } from '../core/config.ts';
import { setTreeWritable } from '../core/read-only.ts';
import { createLogger } from '../core/log.ts';
import { freePort } from '../stack/ports.ts';
import { startStack } from '../stack/start-stack.ts';
import { repoRoot } from '../stack/binaries.ts';
import { testNamespace } from './support/stack-env.ts';

function testFiles(dir: string): string[] {
  const abs = path.join(repoRoot, 'test', dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => path.join(abs, f));
}

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const selected = args.filter((a) => !a.startsWith('--'));
const all = [...testFiles('unit'), ...(unitOnly ? [] : [...testFiles('integration'), ...testFiles('browser')])];
const files = selected.length ? all.filter((f) => selected.some((s) => f.includes(s))) : all;
const stackFiles = files.filter((f) => !f.includes(`${path.sep}unit${path.sep}`));
const needsStack = stackFiles.length > 0;

// Per-file state dirs live inside the checkout (see test/support/stack-env.ts), one folder per run.
const runDir = path.join(repoRoot, '.mcpship', 'tmp-test', `run-${process.pid}`);
const env: Record<string, string> = { ...(process.env as Record<string, string>), MCPSHIP_TEST_RUN_DIR: runDir };
let stopStack = async () => {};
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-test-stack-'));

if (needsStack) {
  const { config } = loadConfig({
    MCPSHIP_STATE_DIR: stateDir,
    MCPSHIP_TEMPORAL_PORT: String(await freePort()),
    MCPSHIP_TEMPORAL_UI_PORT: String(await freePort()),
    MCPSHIP_MONGO_PORT: String(await freePort()),
    MCPSHIP_LOG_LEVEL: 'warn',
  });
  const stack = await startStack(config, createLogger('warn', 'test-stack'), { extraNamespaces: stackFiles.map(testNamespace) });
  console.log(`test stack: Temporal ${stack.temporalAddress} (Web UI ${stack.temporalUiUrl}), MongoDB ${stack.mongoUri}`);
  env.MCPSHIP_TEST_TEMPORAL_ADDRESS = stack.temporalAddress;
  env.MCPSHIP_TEST_MONGODB_URI = stack.mongoUri;
  env.MCPSHIP_TEST_TEMPORAL_UI_URL = stack.temporalUiUrl ?? '';
  stopStack = () => stack.stop();
}

// Most of an integration test's time is waiting (rollout steps, debounces, process starts), so two
// files at once halve the wall time on two cores; each file has its own namespace, database, task
// queue, ports and state dir, so they cannot see each other.
const concurrency = Number(process.env.MCPSHIP_TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`MCPSHIP_TEST_CONCURRENCY must be a positive integer, not ${process.env.MCPSHIP_TEST_CONCURRENCY}`);

let exitCode = 1;
const stop = async () => {
  await stopStack();
  rmSync(stateDir, { recursive: true, force: true });
  // This run's per-file state dirs (staged versions are read-only, so they are made writable first).
  await setTreeWritable(runDir, true);
  rmSync(runDir, { recursive: true, force: true });
};
process.once('SIGINT', () => void stop().then(() => process.exit(130)));
try {
  const result = await execa(
    process.execPath,
    // A hung test (or hook) must fail the run, not stall it: a per-test ceiling far above any
    // test's real duration, and no waiting on handles left open after the last test.
    ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', '--test-force-exit', '--test-reporter=spec', ...files],
    { env, stdio: 'inherit', reject: false, cwd: repoRoot },
  );
  exitCode = result.exitCode ?? 1;
} finally {
  await stop();
}
process.exit(exitCode);
