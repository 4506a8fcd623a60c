/**
 * The stdio section of bench/gateway-overhead.ts: what a new MCP session costs on a stdio service
 * (the bridge starts, or hands over, a stdio server process per session) and what stateless
 * (2026-07-28) calls cost through the bridge's shared children.
 *
 * The service is test/fixtures/stdio/dual-era-server.mjs (SDK v2, both protocol generations),
 * behind the stdio bridge as the runner starts it (runner/stdio-bridge-main.ts, its own process,
 * default settings). Measured straight at the bridge and, when the caller registers it with a
 * gateway, through the gateway. The clients run in bench/lib/stdio-load.ts, a process of its own.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { freePort } from '../../stack/ports.ts';
import { childEnv, fmtMs, repoRoot, summarize, table } from './common.ts';
import type { StdioLoadOptions, StdioLoadResult } from './stdio-load.ts';

const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'stdio', 'dual-era-server.mjs');
const SESSIONS = Number(process.env.BENCH_STDIO_SESSIONS ?? 100);
const STATELESS_CALLS = Number(process.env.BENCH_STDIO_CALLS ?? 800);
/** Long enough for a replaced warm spare to be ready again between one client's sessions. */
const SEQUENTIAL_PAUSE_MS = 300;

async function startBridge(): Promise<{ url: string; child: ResultPromise }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const child = execa(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'runner', 'stdio-bridge-main.ts'), '--port', String(port), '--cwd', path.dirname(FIXTURE), '--', 'node', FIXTURE],
    { cwd: repoRoot, env: childEnv(), extendEnv: false, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' },
  );
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`the stdio bridge exited with ${child.exitCode}`);
    // A GET without a session is refused (400) without starting anything: the bridge listens.
    if (await fetch(url, { headers: { accept: 'text/event-stream' } }).then((r) => r.status, () => undefined)) return { url, child };
    await sleep(100);
  }
  throw new Error('the stdio bridge did not answer');
}

async function load(options: StdioLoadOptions): Promise<StdioLoadResult> {
  const result = await execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench', 'lib', 'stdio-load.ts'), JSON.stringify(options)], {
    cwd: repoRoot,
    env: childEnv(),
    reject: false,
  });
  if (result.exitCode !== 0) throw new Error(`stdio load generator failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as StdioLoadResult;
}

function row(label: string, result: StdioLoadResult): string[] {
  const s = summarize(result.latenciesMs);
  const error = result.errors ? ` (${result.firstError?.slice(0, 100)})` : '';
  return [label, String(s.n), fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.max), `${result.errors}${error}`, String(result.pids.length)];
}

/** `gatewayUrlFor` registers the bridge with a gateway and returns the gateway's URL for it. */
export async function stdioBench(gatewayUrlFor?: (bridgeUrl: string) => Promise<string>): Promise<void> {
  const bridge = await startBridge();
  try {
    // Whatever the bridge starts ahead of demand gets the time a running instance would have had.
    await sleep(2_000);
    const targets = [{ label: 'direct to the bridge', url: bridge.url }];
    if (gatewayUrlFor) targets.push({ label: 'through the gateway', url: await gatewayUrlFor(bridge.url) });

    const rows: string[][] = [];
    for (const target of targets) {
      const sequential = await load({ url: target.url, mode: 'sessions', clients: 1, total: Math.ceil(SESSIONS / 2), warmup: 4, pauseMs: SEQUENTIAL_PAUSE_MS });
      rows.push(row(`${target.label}, 1 client, ${SEQUENTIAL_PAUSE_MS} ms apart`, sequential));
      const concurrent = await load({ url: target.url, mode: 'sessions', clients: 4, total: SESSIONS, warmup: 8 });
      rows.push(row(`${target.label}, 4 clients back to back`, concurrent));
    }
    console.log(`new MCP sessions (revision 2025-11-25) on a stdio service: connect = initialize + initialized; then one tools/call and DELETE`);
    console.log(table(['path', 'sessions', 'connect p50', 'connect p99', 'max', 'errors', 'stdio processes seen'], rows));

    const statelessRows: string[][] = [];
    for (const target of targets) {
      const result = await load({ url: target.url, mode: 'stateless', clients: 8, total: STATELESS_CALLS, warmup: 40 });
      statelessRows.push([...row(target.label, result), String(result.crossTalk)]);
    }
    console.log(`\nstateless calls (2026-07-28, SDK v2 clients): 8 clients, tools/call whoami with each client's own tag`);
    console.log(table(['path', 'calls', 'p50', 'p99', 'max', 'errors', 'stdio processes seen', 'answers with another client’s tag'], statelessRows));
  } finally {
    bridge.child.kill('SIGTERM');
    await bridge.child;
  }
  // The bridge ends every stdio server it started when it stops.
  const { stdout } = await execa('ps', ['-eo', 'args='], { reject: false });
  const left = stdout.split('\n').filter((line) => line.includes(FIXTURE) && !line.includes('stdio-bridge-main')).length;
  console.log(`\nstdio server processes left after the bridge stopped: ${left}`);
}
