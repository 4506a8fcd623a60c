/**
 * The load generator of the stdio section of bench/gateway-overhead.ts, a process of its own like
 * mcp-load.ts, so that the clients share no event loop with the gateway or the bridge they measure.
 *
 *   node --import tsx bench/lib/stdio-load.ts '{"url":"…","mode":"sessions","clients":4,"total":100,"warmup":8,"pauseMs":0}'
 *
 * - `sessions`: `clients` loops open new MCP sessions (SDK 1.x, revision 2025-11-25) one after the
 *   other until `total` are done: connect (initialize + initialized, the figure recorded), one
 *   `tools/call whoami`, DELETE. `pauseMs` is slept between a loop's sessions.
 * - `stateless`: `clients` SDK v2 clients pinned to 2026-07-28 each call `whoami` with their own
 *   tag, `total` calls in all; an answer carrying another client's tag is counted as cross-talk.
 *
 * Prints one JSON line (StdioLoadResult).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface StdioLoadOptions {
  url: string;
  mode: 'sessions' | 'stateless';
  clients: number;
  total: number;
  warmup: number;
  pauseMs?: number;
}

export interface StdioLoadResult {
  /** New-session (connect) or call latencies, warm-up excluded. */
  latenciesMs: number[];
  errors: number;
  firstError?: string;
  /** Stateless only: answers that carried another client's tag. */
  crossTalk: number;
  /** The stdio server processes that answered. */
  pids: number[];
}

interface Answer {
  tag: string;
  pid: number;
}

function answerOf(result: unknown): Answer {
  const [first] = ((result as { content?: unknown }).content ?? []) as { text?: string }[];
  return JSON.parse(first?.text ?? '{}') as Answer;
}

async function run(opts: StdioLoadOptions): Promise<StdioLoadResult> {
  const latenciesMs: number[] = [];
  const pids = new Set<number>();
  let errors = 0;
  let crossTalk = 0;
  let firstError: string | undefined;
  const failed = (err: unknown) => {
    errors++;
    firstError ??= (err as Error).message;
  };

  if (opts.mode === 'sessions') {
    let next = 0;
    const session = async (record: boolean) => {
      const transport = new StreamableHTTPClientTransport(new URL(opts.url));
      const client = new Client({ name: 'mcpship-bench-stdio', version: '0.0.0' });
      client.onerror = () => {};
      const started = performance.now();
      try {
        await client.connect(transport);
        if (record) latenciesMs.push(performance.now() - started);
        pids.add(answerOf(await client.callTool({ name: 'whoami', arguments: { tag: 's' } })).pid);
        await transport.terminateSession();
      } catch (err) {
        failed(err);
      } finally {
        await client.close().catch(() => {});
      }
    };
    const loop = async (count: number, record: boolean) => {
      while (next < count) {
        next++;
        await session(record);
        if (opts.pauseMs) await sleep(opts.pauseMs);
      }
    };
    await Promise.all(Array.from({ length: opts.clients }, () => loop(opts.warmup, false)));
    next = 0;
    errors = 0;
    await Promise.all(Array.from({ length: opts.clients }, () => loop(opts.total, true)));
  } else {
    const clients = await Promise.all(
      Array.from({ length: opts.clients }, async (_, i) => {
        const client = new ClientV2({ name: `mcpship-bench-stateless-${i}`, version: '0.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
        await client.connect(new HttpTransportV2(new URL(opts.url)));
        return { client, tag: `client-${i}` };
      }),
    );
    let next = 0;
    const drive = async (count: number, record: boolean) => {
      await Promise.all(
        clients.map(async ({ client, tag }) => {
          while (next < count) {
            next++;
            const started = performance.now();
            try {
              const answer = answerOf(await client.callTool({ name: 'whoami', arguments: { tag } }));
              if (record) latenciesMs.push(performance.now() - started);
              if (answer.tag !== tag) crossTalk++;
              pids.add(answer.pid);
            } catch (err) {
              failed(err);
            }
          }
        }),
      );
    };
    await drive(opts.warmup, false);
    next = 0;
    errors = 0;
    await drive(opts.total, true);
    for (const { client } of clients) await client.close().catch(() => {});
  }
  return { latenciesMs, errors, ...(firstError ? { firstError } : {}), crossTalk, pids: [...pids] };
}

const opts = JSON.parse(process.argv[2] ?? '{}') as StdioLoadOptions;
try {
  process.stdout.write(`${JSON.stringify(await run(opts))}\n`);
} catch (err) {
  // A generator that cannot even connect (e.g. stateless clients against a bridge that refuses them) is a figure too.
  process.stdout.write(`${JSON.stringify({ latenciesMs: [], errors: opts.total, firstError: (err as Error).message, crossTalk: 0, pids: [] })}\n`);
}
