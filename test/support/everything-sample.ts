// The `everything` sample as a plain process for tests that need a real MCP server behind the gateway.
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { waitFor } from './wait.ts';

const DIR = path.join(repoRoot, 'examples', 'services', 'everything');

/** Starts the sample on a free port and resolves once it answers; stop() ends it. */
export async function startEverythingSample(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const child = execa('node', [path.join(DIR, 'src', 'index.js')], {
    cwd: DIR,
    env: { PATH: process.env.PATH ?? '', PORT: String(port) },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  const stop = async () => {
    child.kill('SIGTERM');
    await child;
  };
  await waitFor(
    'the everything sample',
    async () => {
      if (child.exitCode !== null) throw new Error('the everything sample exited before it was ready');
      return fetch(url).then((res) => res.status, () => undefined);
    },
    120_000,
  );
  return { url, stop };
}
