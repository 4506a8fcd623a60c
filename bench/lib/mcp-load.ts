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
  /** CPU time this client process spent on the measured calls alone. */
  callsCpuMs: number;
  /** JSON-RPC messages the clients sent and received, all of them (initialize, notifications, warm-up): what capture must store. */
  messages: { sent: number; received: number };
}

/** Counts every message a transport sends and hands to its client, without touching the bytes. */
function countMessages(transport: StreamableHTTPClientTransport, counts: LoadResult['messages']): void {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    counts.sent += Array.isArray(message) ? message.length : 1;
    return send(message, options);
  };
  let handler: StreamableHTTPClientTransport['onmessage'];
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get: () => handler,
    set: (next: StreamableHTTPClientTransport['onmessage']) => {
      handler =
        next &&
        ((message) => {
          counts.received += 1;
          next(message);
        });
    },
  });
}

/**
 * Run under fork() (an IPC channel): tells the parent where the measured calls start and end and
 * waits for its answer, so that it can read other processes' CPU exactly around them (session
 * set-up and warm-up left out). Without a channel: nothing.
 */
async function phase(name: 'calls-start' | 'calls-end'): Promise<void> {
  if (!process.send) return;
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!({ phase: name });
  });
}

/** Sessions being opened at once. */
const CONNECTS_AT_ONCE = 32;

async function run(opts: LoadOptions): Promise<LoadResult> {
  let connecting = 0;
  const cpuBefore = process.cpuUsage();
  const messages = { sent: 0, received: 0 };
  const sessions: { client: Client; transport: StreamableHTTPClientTransport }[] = [];
  // A bounded number of connects at a time: a thousand at once overflow the server's listen
  // backlog (ECONNRESET) before anything is measured.
  await Promise.all(
    Array.from({ length: Math.min(opts.clients, CONNECTS_AT_ONCE) }, async () => {
      while (sessions.length + connecting < opts.clients) {
        connecting++;
        const transport = new StreamableHTTPClientTransport(new URL(opts.url));
        countMessages(transport, messages);
        const client = new Client({ name: 'mcpship-bench', version: '0.0.0' });
        // The background GET stream ends with the session; nothing here depends on it.
        client.onerror = () => {};
        await client.connect(transport).finally(() => connecting--);
        sessions.push({ client, transport });
      }
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
  await phase('calls-start');
  const started = performance.now();
  const callsCpuBefore = process.cpuUsage();
  await drive(opts.calls, true);
  const callsCpu = process.cpuUsage(callsCpuBefore);
  const wallMs = performance.now() - started;
  await phase('calls-end');

  for (const { client, transport } of sessions) {
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { calls: opts.calls, wallMs, latenciesMs, errors, ...(firstError ? { firstError } : {}), cpuMs: (cpu.user + cpu.system) / 1000, callsCpuMs: (callsCpu.user + callsCpu.system) / 1000, messages };
}

const opts = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
process.stdout.write(`${JSON.stringify(await run(opts))}\n`);
// An open IPC channel would keep the process alive.
if (process.send) process.disconnect();
