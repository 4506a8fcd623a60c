import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../core/config.ts';
import { repoRoot } from '../../stack/binaries.ts';

/** The shared test stack started by test/run.ts; a test file run on its own gets a clear error. */
export function stackAddresses(): { temporalAddress: string; mongoUri: string; temporalUiUrl: string } {
  const temporalAddress = process.env.MCPSHIP_TEST_TEMPORAL_ADDRESS;
  const mongoUri = process.env.MCPSHIP_TEST_MONGODB_URI;
  if (!temporalAddress || !mongoUri) {
    throw new Error('integration tests need the test stack: run them through `npm test` (test/run.ts)');
  }
  return { temporalAddress, mongoUri, temporalUiUrl: process.env.MCPSHIP_TEST_TEMPORAL_UI_URL ?? '' };
}

/**
 * A fresh state dir inside the checkout, so that validation commands run in snapshots under it
 * resolve packages (typescript, the MCP SDK) from the checkout's node_modules, as in `npm start`.
 */
export function testStateDir(): string {
  const root = process.env.MCPSHIP_TEST_RUN_DIR ?? path.join(repoRoot, '.mcpship', 'tmp-test', 'manual');
  mkdirSync(root, { recursive: true });
  return mkdtempSync(path.join(root, 'state-'));
}

/**
 * Workflow ids are stable (`service/<name>`, `deploy/<name>/<version>`), so two test files in one
 * Temporal namespace would signal each other's workflows — a run left by an earlier file, polled by
 * a worker long gone, swallows the next file's saves. Each test file gets a namespace of its own,
 * created by test/run.ts when it starts the stack.
 */
export function testNamespace(file: string): string {
  const relative = path.relative(path.join(repoRoot, 'test'), path.resolve(file)).replace(/\.test\.ts$/, '');
  return `test-${relative.split(path.sep).join('-')}`;
}

/** This process's test file's namespace; `default` outside a test file (the fault suite runs a stack of its own). */
function currentNamespace(): string {
  const file = process.argv[1];
  return file?.endsWith('.test.ts') ? testNamespace(file) : 'default';
}

/**
 * A config pointing at the shared stack, with a namespace, database, task queue and state dir of its own, so
 * test files cannot see each other's data.
 */
export function testConfig(env: Record<string, string> = {}): Config {
  const { temporalAddress, mongoUri } = stackAddresses();
  const id = randomUUID().slice(0, 8);
  const stateDir = testStateDir();
  return loadConfig({
    TEMPORAL_ADDRESS: temporalAddress,
    MONGODB_URI: mongoUri,
    MCPSHIP_MONGO_DATABASE: `test_${id}`,
    MCPSHIP_TASK_QUEUE: `test-${id}`,
    TEMPORAL_NAMESPACE: currentNamespace(),
    MCPSHIP_STATE_DIR: stateDir,
    MCPSHIP_SERVICES_DIR: path.join(stateDir, 'services'),
    MCPSHIP_LOG_LEVEL: 'warn',
    ...env,
  }).config;
}
