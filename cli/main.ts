import { Command } from 'commander';
import { assertSafeBind, UnsafeBindError } from '../api/admin-auth.ts';
import type { ControlAnswer } from '../api/routes/deployments.ts';
import { resolveAdminToken } from '../core/admin-token.ts';
import { ConfigError, loadConfig, type LoadedConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { StackStartError } from '../stack/managed-process.ts';
import { PortInUseError } from '../stack/ports.ts';
import { ApiClient, ApiError } from './api-client.ts';
import { compatCommand } from './compat-command.ts';
import { runConfigCommand } from './config-command.ts';
import { replayCommand, type ReplayOptions } from './replay-command.ts';
import { alertsCommand, silenceCommand } from './alerts-command.ts';
import { logsCommand, versionsCommand } from './service-commands.ts';
import { rolloutCommand, type RolloutCommand, type RolloutOptions } from './rollout-commands.ts';
import { statusCommand, type StatusOptions } from './status-command.ts';
import { runServe } from './serve.ts';
import { runTokenCommand } from './token-command.ts';
import type { SystemParts } from './system.ts';

const program = new Command('mcpship').description('Develop, validate, roll out, watch and roll back your own MCP servers.');

function load(): LoadedConfig {
  return loadConfig();
}

/** A client of the running API, with the admin token in force (configured or stored). */
async function apiClient(api: string | undefined): Promise<ApiClient> {
  const { config } = load();
  return new ApiClient(config, api, await resolveAdminToken(config));
}

const SERVE_COMMANDS: [name: string, description: string, parts: SystemParts][] = [
  ['up', 'start the embedded stack (Temporal dev server + Web UI, FerretDB), the worker, a runner node and the API; Ctrl-C stops all', { worker: true, runner: true, api: true }],
  ['worker', 'run the Temporal worker and watcher, and a runner node unless --no-runner (against TEMPORAL_ADDRESS and MONGODB_URI, or the embedded stack)', { worker: true, runner: true, api: false }],
  ['runner', 'run only a runner node: instances placed on it, reachable at MCPSHIP_ADVERTISE_HOST', { worker: false, runner: true, api: false }],
  ['api', 'run only the REST API and MCP gateway', { worker: false, runner: false, api: true }],
];
for (const [name, description, serveParts] of SERVE_COMMANDS) {
  const command = program.command(name).description(description);
  if (name === 'worker') command.option('--no-runner', 'leave the instances to `mcpship runner` nodes');
  command.option('--json', 'print one JSON line when up (addresses) and one when stopped; logs stay JSON on stderr');
  command.action(async (opts: { runner?: boolean; json?: boolean }) => {
    const parts = { ...serveParts, runner: serveParts.runner === true && opts.runner !== false };
    const { config } = load();
    // Refused before anything starts: a stack brought up only to be stopped again helps no one.
    if (parts.api) assertSafeBind({ host: config.api.host, adminToken: await resolveAdminToken(config) });
    await runServe(config, createLogger(config.logLevel), parts, { json: opts.json === true });
  });
}

program
  .command('config')
  .description('print the effective configuration and where each value came from')
  .option('--json', 'print JSON only')
  .action((opts: { json?: boolean }) => runConfigCommand(load(), Boolean(opts.json)));

program
  .command('status')
  .description('services, their versions, the deployment in progress, the last validation and firing alerts, with Temporal Web UI links')
  .option('-w, --watch', 'keep the view live (redrawn as events arrive) until Ctrl-C')
  .option('--interval <sec>', 'with --watch: redraw at least this often', '2')
  .option('--json', 'print JSON (with --watch: one object per line, per redraw)')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (opts: StatusOptions & { api?: string }) => statusCommand(await apiClient(opts.api), opts));

program
  .command('versions')
  .argument('<service>')
  .description("a service's staged, active and archived versions")
  .option('--json', 'print JSON')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (service: string, opts: { api?: string; json?: boolean }) => versionsCommand(await apiClient(opts.api), service, opts));

program
  .command('compat')
  .argument('<service>')
  .description("a service's compatibility matrix: versions × clients and tools (round trip, schema, replay), failing paths, transform success rates")
  .option('--json', 'print JSON')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (service: string, opts: { api?: string; json?: boolean }) => compatCommand(await apiClient(opts.api), service, opts));

program
  .command('logs')
  .argument('<service>')
  .description("a service's events; --follow keeps printing them as they happen")
  .option('-f, --follow', 'follow new events until Ctrl-C')
  .option('--json', 'print each event as one JSON line')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (service: string, opts: { follow?: boolean; api?: string; json?: boolean }) => logsCommand(await apiClient(opts.api), service, opts));

const ROLLOUT_COMMANDS: [name: RolloutCommand, args: string, description: string][] = [
  ['deploy', '<service> <version>', 'deploy a staged or archived version as a canary, then follow the rollout until it ends'],
  ['promote', '<service>', 'promote the canary to 100% now, then follow until it is active'],
  ['rollback', '<service> [version]', 'roll back to [version] (default: the newest archived one), then follow until it is active again'],
  ['pause', '<service>', 'hold the rollout at its current step'],
  ['resume', '<service>', 'go on with a paused rollout, then follow it until it ends'],
  ['abort', '<service>', 'stop the rollout and put the stable version back, then follow until it is aborted'],
];
for (const [name, args, description] of ROLLOUT_COMMANDS) {
  const cmd = program
    .command(`${name} ${args}`)
    .description(description)
    .option('--json', 'print the answer and each event of the rollout as one JSON line')
    .option('--no-follow', 'only send the command and print the answer')
    .option('--api <url>', 'the mcpship API (default: from the config)');
  if (name === 'abort') cmd.option('--reason <text>', 'why (kept with the deployment)');
  cmd.action(async (service: string, ...rest: unknown[]) => {
    const version = args.includes('version') && typeof rest[0] === 'string' ? rest[0] : undefined;
    const opts = rest.find((r): r is RolloutOptions & { api?: string } => typeof r === 'object' && r !== null && !('commands' in r)) ?? {};
    await rolloutCommand(await apiClient(opts.api), name, service, version, opts);
  });
}

program
  .command('replay')
  .argument('<service>')
  .argument('<version>', 'the candidate version')
  .description("replay the active version's captured traffic against <version> and a second stable instance; progress, then the report")
  .option('--baseline <version>', 'replay the capture of this version instead of the active one')
  .option('--since <iso-date>', 'captured since (default: rollout.replayGate.windowHours ago)')
  .option('--until <iso-date>', 'captured until (default: now)')
  .option('--tools <a,b>', 'compare only calls of these tools')
  .option('--clients <a,b>', 'only traffic of these clients (clientInfo name or client key)')
  .option('--sample <n>', 'at most n requests (default: rollout.replayGate.sampleSize)')
  .option('--json', 'print the report as JSON')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (service: string, version: string, opts: ReplayOptions & { api?: string }) => replayCommand(await apiClient(opts.api), service, version, opts));

program
  .command('override')
  .argument('<service>')
  .argument('<reason...>', 'why the blocked version may go on (kept with the gate report)')
  .description('let a deployment the replay gate BLOCKED go on to its canary')
  .option('--json', 'print the deployment state as JSON')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (service: string, reason: string[], opts: { api?: string; json?: boolean }) => {
    const state = await (await apiClient(opts.api)).request<ControlAnswer>('POST', `/api/services/${encodeURIComponent(service)}/deployment/override`, { reason: reason.join(' ') });
    console.log(opts.json ? JSON.stringify(state) : `${service}@${state.version}: override accepted (stage ${state.stage})`);
  });

program
  .command('alerts')
  .description('firing, pending and recently resolved alerts, and the silences in force')
  .option('--service <name>', 'only this service')
  .option('--json', 'print JSON')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (opts: { service?: string; json?: boolean; api?: string }) => alertsCommand(await apiClient(opts.api), opts));

program
  .command('silence')
  .argument('<comment...>', 'why (kept with the silence)')
  .description('send no alert notifications for a while (matching alerts still show)')
  .option('--service <name>', 'only this service (default: all)')
  .option('--rule <rule>', 'only this rule (default: all)')
  .option('--for <minutes>', 'how long', '60')
  .option('--json', 'print JSON')
  .option('--api <url>', 'the mcpship API (default: from the config)')
  .action(async (comment: string[], opts: { service?: string; rule?: string; for: string; json?: boolean; api?: string }) => silenceCommand(await apiClient(opts.api), comment.join(' '), opts));

program
  .command('token')
  .description('make the admin token (first use: generated, stored in the state dir with mode 0600, printed once)')
  .option('--rotate', 'replace the stored token with a new one (printed once)')
  .option('--json', 'print JSON: where the token is, and the token when it was just made')
  .action((opts: { rotate?: boolean; json?: boolean }) => runTokenCommand(load(), opts));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError || err instanceof StackStartError || err instanceof PortInUseError || err instanceof ApiError || err instanceof UnsafeBindError) {
    console.error(`mcpship: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
