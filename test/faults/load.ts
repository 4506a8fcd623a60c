import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** One `add` call: its operand `a` is unique in the whole run, so its captured request and response can be found. */
export interface CallRecord {
  seq: number;
  ok: boolean;
  error?: string;
}

export interface LoadFigures {
  sent: number;
  ok: number;
  /** Failed for the client even after the spec's answer to a 404 (a new session, the call once more). */
  failed: number;
  reopened: number;
  errors: string[];
}

let nextSeq = 1_000_000;

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'mcpship-faults', version: '1.0.0' });
  // The background GET stream ends with the session or the gateway; each call reports its own failure.
  client.onerror = () => {};
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** True when a new session's call succeeds: the service is serving (no breaker open, an instance ready). */
export async function serving(url: string): Promise<boolean> {
  const client = await connect(url);
  try {
    return !(await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).isError;
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * Continuous MCP load for the fault suite: real SDK clients calling `add(seq, 0)` in a loop through
 * the gateway, a new session every few calls. Unlike test/support/mcp-traffic.ts it keeps a ledger
 * of every call, so that each answered call can be looked up in the capture afterwards.
 */
export class LedgerLoad {
  private running = true;
  private readonly loops: Promise<void>[] = [];
  readonly calls: CallRecord[] = [];
  reopened = 0;

  constructor(
    private readonly url: string,
    concurrency = 2,
    private readonly pauseMs = 25,
    private readonly callsPerSession = 10,
  ) {
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    let client: Client | undefined;
    let n = 0;
    while (this.running) {
      n++;
      const record: CallRecord = { seq: nextSeq++, ok: false };
      this.calls.push(record);
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          client ??= await connect(this.url);
          const result = await client.callTool({ name: 'add', arguments: { a: record.seq, b: 0 } });
          if (result.isError) record.error = `tool error: ${JSON.stringify(result.content).slice(0, 200)}`;
          else record.ok = true;
          break;
        } catch (err) {
          await client?.close().catch(() => {});
          client = undefined;
          if (err instanceof StreamableHTTPError && err.code === 404 && attempt === 0) {
            this.reopened++;
            continue;
          }
          record.error = String((err as Error).message ?? err).slice(0, 200);
          break;
        }
      }
      if (n % this.callsPerSession === 0) {
        await client?.close().catch(() => {});
        client = undefined;
      }
      await new Promise((r) => setTimeout(r, record.ok ? this.pauseMs : 250));
    }
    await client?.close().catch(() => {});
  }

  get figures(): LoadFigures {
    const failed = this.calls.filter((c) => !c.ok && c.error !== undefined);
    return {
      sent: this.calls.length,
      ok: this.calls.filter((c) => c.ok).length,
      failed: failed.length,
      reopened: this.reopened,
      errors: [...new Set(failed.map((c) => c.error!))].slice(0, 5),
    };
  }

  okSince(mark: number): number {
    return this.calls.slice(mark).filter((c) => c.ok).length;
  }

  async stop(): Promise<CallRecord[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.calls;
  }
}
