import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { repoRoot } from '../../stack/binaries.ts';
import { childEnv } from './child-env.ts';

const FIXTURE = path.join(repoRoot, 'test/fixtures/dual-mode/server.mjs');

export interface DualModeFixture {
  /** Never rejects (reject: false): the caller kills it and awaits it when done. */
  child: ResultPromise;
  /** Its MCP endpoint. */
  url: string;
}

/**
 * Starts test/fixtures/dual-mode/server.mjs (SDK v2, both protocol generations) on a free port and
 * resolves once it listens. `env` sets its VERSION and, as the fixture reads them, RESPONSE_MODE, TTL_MS….
 */
export async function startDualModeFixture(env: Record<string, string> & { VERSION: string }): Promise<DualModeFixture> {
  const child = execa('node', [FIXTURE], { env: childEnv({ PORT: '0', ...env }), extendEnv: false, reject: false, stdin: 'ignore' });
  const port = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(`dual-mode fixture ${env.VERSION} exited: ${out}`)));
  });
  return { child, url: `http://127.0.0.1:${port}/mcp` };
}
