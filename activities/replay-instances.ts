/**
 * The instances a replay talks to: started by the replay activity itself from the versions' files,
 * on ports of their own, and never written to MongoDB's instances, so that the gateway cannot route
 * a user to them and a replay cannot reach the instances serving users. Their process groups are
 * recorded like validation steps' (activities/step-processes.ts): a worker that dies mid-replay
 * has them ended by the next worker on the same state dir.
 */
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ToolDefinition } from '../compat/types.ts';
import { loadLaunch } from '../runner/launch.ts';
import { spawnGroup, terminateGroup } from '../runner/process-group.ts';
import { waitReady } from '../runner/readiness.ts';
import { freePort } from '../stack/ports.ts';
import { recordGroup } from './step-processes.ts';

const KILL_GRACE_MS = 2_000;

export interface ReplayInstance {
  url: string;
  tools: ToolDefinition[];
  stop(): Promise<void>;
}

export class ReplayInstanceError extends Error {
  override name = 'ReplayInstanceError';
}

/** Lists every tool with its annotations (the side-effect policy reads them). */
async function listTools(url: string): Promise<ToolDefinition[]> {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'mcpship-replay', version: '1.0.0' });
  try {
    await client.connect(transport, { timeout: 10_000 });
    const tools: ToolDefinition[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : undefined, { timeout: 10_000 });
      tools.push(...(page.tools as ToolDefinition[]));
      cursor = page.nextCursor;
    } while (cursor);
    await transport.terminateSession().catch(() => {});
    return tools;
  } finally {
    await client.close().catch(() => {});
  }
}

export async function startReplayInstance(opts: { dir: string; label: string; stateDir: string; readyTimeoutMs: number; signal: AbortSignal }): Promise<ReplayInstance> {
  const launch = await loadLaunch(opts.dir, await freePort());
  const proc = spawnGroup(launch, path.join(opts.stateDir, 'logs', 'replay', `${opts.label}.log`));
  const forget = proc.pid > 1 ? recordGroup(opts.stateDir, proc.pid, launch.cwd) : () => {};
  const stop = async () => {
    await terminateGroup(proc, KILL_GRACE_MS);
    forget();
  };
  try {
    const ready = await waitReady(launch.url, { timeoutMs: opts.readyTimeoutMs, intervalMs: 200, alive: proc.running, signal: opts.signal });
    if (!ready.ready) throw new ReplayInstanceError(`${opts.label}: ${ready.reason} (log: ${path.join(opts.stateDir, 'logs', 'replay', `${opts.label}.log`)})`);
    return { url: launch.url, tools: await listTools(launch.url), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
