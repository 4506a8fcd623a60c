/**
 * How one instance of a version is started, from its manifest: http servers run as they are with
 * PORT set; stdio servers run behind the stdio bridge (its own process, see stdio-bridge-main.ts),
 * so that every instance is an HTTP endpoint and a process group the runner can signal as one.
 */
import { fileURLToPath } from 'node:url';
import { childEnv } from '../core/child-env.ts';
import { loadManifest, PORT_ENV, type Manifest } from '../core/manifest.ts';
import type { ProcessSpec } from './process-group.ts';
import { bridgeFlags } from './stdio-bridge-flags.ts';

export const BRIDGE_PATH = '/mcp';
export const BRIDGE_MAIN = fileURLToPath(new URL('./stdio-bridge-main.ts', import.meta.url));
/** Resolved here rather than by name so that the bridge starts from any working directory. */
const TSX_LOADER = import.meta.resolve('tsx');

export interface Launch extends ProcessSpec {
  transport: Manifest['transport'];
  /** The Streamable HTTP MCP endpoint the instance will serve. */
  url: string;
}

export function launchFor(manifest: Manifest, dir: string, port: number): Launch {
  // The same allow-list as the validation steps: the runner's database URI and token stay out.
  const env = childEnv({ env: manifest.start.env, passEnv: manifest.passEnv });
  if (manifest.transport === 'http') {
    return {
      transport: 'http',
      command: manifest.start.command,
      args: manifest.start.args,
      cwd: dir,
      env: { ...env, [PORT_ENV]: String(port) },
      url: `http://127.0.0.1:${port}${manifest.http.path}`,
    };
  }
  return {
    transport: 'stdio',
    command: process.execPath,
    args: ['--import', TSX_LOADER, BRIDGE_MAIN, '--port', String(port), '--cwd', dir, ...bridgeFlags(manifest.stdio), '--', manifest.start.command, ...manifest.start.args],
    cwd: dir,
    env,
    url: `http://127.0.0.1:${port}${BRIDGE_PATH}`,
  };
}

export async function loadLaunch(dir: string, port: number): Promise<Launch> {
  return launchFor(await loadManifest(dir), dir, port);
}
