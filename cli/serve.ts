import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { startSystem, type SystemParts } from './system.ts';

/** Runs the system in the foreground until SIGINT/SIGTERM, then stops every part it started. */
export async function runServe(config: Config, log: Logger, parts: SystemParts): Promise<void> {
  const system = await startSystem(config, log, parts);
  const { stack } = system;
  const lines = [
    'mcpship is up',
    `  Temporal         ${stack.temporalAddress} (namespace ${config.temporal.namespace}, task queue ${config.temporal.taskQueue})`,
    ...(stack.temporalUiUrl ? [`  Temporal Web UI  ${stack.temporalUiUrl}`] : []),
    `  MongoDB          ${stack.mongoUri} (database ${config.mongo.database})`,
    ...(system.api ? [`  API              ${system.api.url}`] : []),
    ...(system.worker ? ['  worker           running'] : []),
    `  state            ${config.stateDir}`,
    'Ctrl-C stops everything.',
  ];
  console.log(lines.join('\n'));
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    system.worker?.done.catch((err: unknown) => {
      log.error({ err }, 'worker stopped with an error');
      resolve();
    });
  });
  await system.stop();
  console.log('mcpship stopped');
}
