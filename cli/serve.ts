import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { startSystem, type SystemParts } from './system.ts';

/** Runs the system in the foreground until SIGINT/SIGTERM, then stops every part it started. */
export async function runServe(config: Config, log: Logger, parts: SystemParts, opts: { json?: boolean } = {}): Promise<void> {
  const system = await startSystem(config, log, parts);
  const { stack } = system;
  // --json: one line a script can wait for and read the addresses from (the logs go to stderr).
  const say = (state: 'up' | 'stopped', text: string) => {
    if (!opts.json) return console.log(text);
    if (state === 'stopped') return console.log(JSON.stringify({ state }));
    console.log(
      JSON.stringify({
        state,
        temporal: { address: stack.temporalAddress, namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue, ...(stack.temporalUiUrl ? { uiUrl: stack.temporalUiUrl } : {}) },
        mongo: { uri: stack.mongoUri, database: config.mongo.database },
        ...(system.api ? { api: system.api.url } : {}),
        worker: Boolean(system.worker),
        stateDir: config.stateDir,
      }),
    );
  };
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
  say('up', lines.join('\n'));
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
  say('stopped', 'mcpship stopped');
}
