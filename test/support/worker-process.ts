import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Config } from '../../core/config.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { stackAddresses } from './stack-env.ts';

/**
 * `mcpship <command>` (`worker`: worker, runner and watcher; `runner`: a runner node; `api`: API and gateway) in a process
 * of its own, on a test's config, so a test can kill it like a crash would.
 */
export function startMcpshipProcess(command: 'worker' | 'runner' | 'api', config: Config, extraEnv: Record<string, string> = {}): ResultPromise {
  const { temporalAddress, mongoUri } = stackAddresses();
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: config.temporal.namespace,
    MONGODB_URI: mongoUri,
    MCPSHIP_MONGO_DATABASE: config.mongo.database,
    MCPSHIP_TASK_QUEUE: config.temporal.taskQueue,
    MCPSHIP_STATE_DIR: config.stateDir,
    MCPSHIP_SERVICES_DIR: config.servicesDir,
    MCPSHIP_DEBOUNCE_MS: String(config.watcher.debounceMs),
    MCPSHIP_API_PORT: String(config.api.port),
    MCPSHIP_LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  return execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), command], { env, reject: false, cwd: repoRoot });
}

export function startWorkerProcess(config: Config, extraEnv: Record<string, string> = {}): ResultPromise {
  return startMcpshipProcess('worker', config, extraEnv);
}
