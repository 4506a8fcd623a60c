/**
 * The calculator sample as a benchmark's MCP server: built once into a state dir, started on a free
 * port, registered as the ready instance the gateway routes to.
 */
import { cp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import type { Store } from '../../core/mongo.ts';
import { freePort } from '../../stack/ports.ts';
import { childEnv, repoRoot } from './common.ts';

/** Builds the calculator sample in a copy inside the state dir (its imports resolve from the checkout's node_modules). */
export async function buildCalculator(stateDir: string, version: string): Promise<string> {
  const dir = path.join(stateDir, `calculator-${version}`);
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir, { recursive: true, filter: (src) => !['node_modules', 'dist'].includes(path.basename(src)) });
  const build = await execa('npm', ['run', 'build'], { cwd: dir, env: childEnv(), extendEnv: false, reject: false, all: true });
  if (build.exitCode !== 0) throw new Error(`calculator build failed:\n${build.all}`);
  return dir;
}

/** Starts a built calculator; the child goes into `children`, for the caller's cleanup. */
export async function startCalculator(dir: string, children: ResultPromise[]): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const child = execa('node', ['dist/index.js'], { cwd: dir, env: childEnv({ PORT: String(port) }), extendEnv: false, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
  children.push(child);
  const deadline = performance.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the calculator in ${dir} exited with ${child.exitCode}`);
    const status = await fetch(url, { headers: { accept: 'text/event-stream' } }).then((r) => r.status, () => undefined);
    if (status !== undefined) return { url, pid: child.pid! };
    if (performance.now() > deadline) throw new Error(`the calculator on ${port} did not answer`);
    await sleep(100);
  }
}

/** What the runner writes for a ready instance; the gateway routes to ready instances with a url. */
export async function addInstance(store: Store, service: string, version: string, instanceId: string, url: string): Promise<void> {
  await store.instances.updateOne(
    { instanceId },
    { $set: { service, version, url, state: 'ready', restarts: 0, updatedAt: new Date() }, $setOnInsert: { instanceId } },
    { upsert: true },
  );
}

/** CPU time (user + system) a process has used so far, from /proc; NaN where there is no /proc. */
export async function processCpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14 and stime 15, in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}
