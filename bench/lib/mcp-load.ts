/**
 * The load generator of bench/gateway-overhead.ts, run as its own process so that the clients do
 * not share an event loop with the gateway they measure (the gateway runs in the bench process,
 * the calculator in a third): direct and gateway runs see the same client.
 *
 *   node --import tsx bench/lib/mcp-load.ts '{"url":"…","clients":4,"calls":2000,"warmup":200}'
 *
 * Opens `clients` real MCP sessions (SDK Client + StreamableHTTPClientTransport), warms up, then
 * has every client call `tools/call add` back to back until `calls` calls are done in all.
 * Prints one JSON line: wall time, every call's latency, and the errors.
 */
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface LoadOptions {
  url: string;
  clients: number;
  calls: number;
  warmup: number;
}

export interface LoadResult {
  calls: number;
  wallMs: number;
  latenciesMs: number[];
  errors: number;
  firstError?: string;
  /** CPU time this client process spent from its first connect to the end (warm-up included). */
  cpuMs: number;
}

async function run(opts: LoadOptions): Promise<LoadResult> {
  const cpuBefore = process.cpuUsage();
  const sessions = await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      const transport = new StreamableHTTPClientTransport(new URL(opts.url));
      const client = new Client({ name: 'mcpship-bench', version: '0.0.0' });
      // The background GET stream ends with the session; nothing here depends on it.
      client.onerror = () => {};
      await client.connect(transport);
      return { client, transport };
    }),
  );

  let errors = 0;
  let firstError: string | undefined;
  const latenciesMs: number[] = [];
  const call = async (client: Client, i: number, record: boolean) => {
    const started = performance.now();
    try {
      const result = await client.callTool({ name: 'add', arguments: { a: i, b: 1 } });
      if (result.isError) throw new Error(`isError: ${JSON.stringify(result.content)}`);
    } catch (err) {
      errors++;
      firstError ??= (err as Error).message;
    }
    if (record) latenciesMs.push(performance.now() - started);
  };

  // Shared counters: every client takes the next call as soon as its previous one is answered.
  const drive = async (total: number, record: boolean) => {
    let next = 0;
    await Promise.all(sessions.map(async ({ client }) => {
      while (next < total) await call(client, next++, record);
    }));
  };

  await drive(opts.warmup, false);
  errors = 0;
  firstError = undefined;
  const started = performance.now();
  await drive(opts.calls, true);
  const wallMs = performance.now() - started;

  for (const { client, transport } of sessions) {
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { calls: opts.calls, wallMs, latenciesMs, errors, ...(firstError ? { firstError } : {}), cpuMs: (cpu.user + cpu.system) / 1000 };
}

const opts = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
process.stdout.write(`${JSON.stringify(await run(opts))}\n`);
