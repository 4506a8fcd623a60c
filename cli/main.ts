import { Command } from 'commander';
import { ConfigError, loadConfig, type LoadedConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { StackStartError } from '../stack/managed-process.ts';
import { PortInUseError } from '../stack/ports.ts';
import { runConfigCommand } from './config-command.ts';
import { runServe } from './serve.ts';

const program = new Command('mcpship').description('Develop, validate, roll out, watch and roll back your own MCP servers.');

function load(): LoadedConfig {
  return loadConfig();
}

program
  .command('up')
  .description('start the embedded stack (Temporal dev server + Web UI, FerretDB), the worker and the API; Ctrl-C stops all')
  .action(async () => {
    const { config } = load();
    await runServe(config, createLogger(config.logLevel), { worker: true, api: true });
  });

program
  .command('worker')
  .description('run only the Temporal worker (against TEMPORAL_ADDRESS and MONGODB_URI, or the embedded stack)')
  .action(async () => {
    const { config } = load();
    await runServe(config, createLogger(config.logLevel), { worker: true, api: false });
  });

program
  .command('api')
  .description('run only the REST API and MCP gateway')
  .action(async () => {
    const { config } = load();
    await runServe(config, createLogger(config.logLevel), { worker: false, api: true });
  });

program
  .command('config')
  .description('print the effective configuration and where each value came from')
  .option('--json', 'print JSON only')
  .action((opts: { json?: boolean }) => runConfigCommand(load(), Boolean(opts.json)));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError || err instanceof StackStartError || err instanceof PortInUseError) {
    console.error(`mcpship: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
