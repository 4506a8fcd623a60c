/**
 * The stdio bridge as a process of its own, one per instance:
 *   node --import tsx runner/stdio-bridge-main.ts --port P --cwd DIR [--stateless-pool N]
 *     [--warm-spares N] [--max-sessions N] [--session-idle-sec S] -- command args...
 * A process rather than an object inside the runner, so that an instance is one process group the
 * runner can signal, restart or lose without touching the others, exactly like an http service.
 * The stdio servers it starts stay in the bridge's process group. The optional flags are the
 * manifest's `stdio` settings (runner/stdio-bridge-flags.ts); absent ones take its defaults.
 */
import { parseArgs } from 'node:util';
import { BRIDGE_FLAG_OPTIONS, settingsFromFlags } from './stdio-bridge-flags.ts';
import { createStdioBridge } from './stdio-bridge.ts';

function usage(message: string): never {
  console.error(
    `stdio-bridge: ${message}\nusage: stdio-bridge-main.ts --port P [--cwd DIR] [--path /mcp] [--stateless-pool N] [--warm-spares N] ` +
      `[--max-sessions N] [--session-idle-sec S] -- command [args...]`,
  );
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: { port: { type: 'string' }, cwd: { type: 'string' }, path: { type: 'string' }, ...BRIDGE_FLAG_OPTIONS },
    allowPositionals: true,
    strict: true,
  });
} catch (err) {
  usage((err as Error).message);
}
const { values, positionals } = parsed;
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be 0-65535, got ${values.port}`);
const [command, ...args] = positionals;
if (!command) usage('no stdio server command after --');
let settings;
try {
  settings = settingsFromFlags(values);
} catch (err) {
  usage((err as Error).message);
}

const env: Record<string, string> = {};
for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;

const bridge = await createStdioBridge({
  command,
  args,
  ...(values.cwd ? { cwd: values.cwd } : {}),
  ...(values.path ? { path: values.path } : {}),
  ...settings,
  env,
  port,
});
console.error(`stdio-bridge: serving \`${[command, ...args].join(' ')}\` at ${bridge.url}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    void bridge.close().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`stdio-bridge: close failed: ${err.message}`);
        process.exit(1);
      },
    );
  });
}
