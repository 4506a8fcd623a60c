import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface TrafficReport {
  calls: number;
  ok: number;
  /** Calls that failed for the client: an error result, or no answer even after a new session. */
  failed: number;
  /** Tool results with isError (the server's own failures). */
  toolErrors: number;
  /** Sessions ended by the gateway with 404 and started anew, as the MCP spec tells clients. */
  reinitialized: number;
  /** Each successful call: the version that answered it (the gateway's X-Mcpship-Version header), and when (Date.now()). */
  answers: { version: string; at: number }[];
  /** New sessions by the version the gateway gave them (X-Mcpship-Version of the initialize answer). */
  sessionsByVersion: Record<string, number>;
  errors: string[];
}

const count = (tally: Record<string, number>, key: string) => void (tally[key] = (tally[key] ?? 0) + 1);

/** A client whose `version()` is the X-Mcpship-Version of the last response its session got. */
async function connect(url: string): Promise<{ client: Client; version: () => string }> {
  let version = 'unknown';
  const client = new Client({ name: 'mcpship-traffic', version: '1.0.0' });
  const seeVersion: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    version = res.headers.get('x-mcpship-version') ?? version;
    return res;
  };
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: seeVersion }));
  return { client, version: () => version };
}

/**
 * Live MCP traffic for rollout tests: a few real SDK clients calling `add` in a loop through the
 * gateway. A 404 is answered the way the spec says, with a new session, and the call is retried
 * once on it; anything else counts as a failed call.
 */
export class McpTraffic {
  private running = true;
  private readonly loops: Promise<void>[] = [];
  readonly report: TrafficReport = { calls: 0, ok: 0, failed: 0, toolErrors: 0, reinitialized: 0, answers: [], sessionsByVersion: {}, errors: [] };

  constructor(
    private readonly url: string,
    concurrency = 2,
    private readonly pauseMs = 20,
    /** Calls per session: clients come and go, so new sessions keep following the weights. */
    private readonly callsPerSession = 10,
  ) {
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop());
  }

  private fail(reason: string) {
    this.report.failed++;
    if (this.report.errors.length < 20) this.report.errors.push(reason);
  }

  private async loop(): Promise<void> {
    let session: Awaited<ReturnType<typeof connect>> | undefined;
    let n = 0;
    while (this.running) {
      n++;
      this.report.calls++;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          if (!session) {
            session = await connect(this.url);
            count(this.report.sessionsByVersion, session.version());
          }
          const result = await session.client.callTool({ name: 'add', arguments: { a: n, b: 1 } });
          if (result.isError) {
            this.report.toolErrors++;
            this.fail(`tool error: ${JSON.stringify(result.content).slice(0, 200)}`);
          } else {
            this.report.ok++;
            this.report.answers.push({ version: session.version(), at: Date.now() });
          }
          break;
        } catch (err) {
          await session?.client.close().catch(() => {});
          session = undefined;
          if (err instanceof StreamableHTTPError && err.code === 404 && attempt === 0) {
            this.report.reinitialized++;
            continue;
          }
          this.fail(String((err as Error).message ?? err));
          break;
        }
      }
      if (n % this.callsPerSession === 0) {
        await session?.client.close().catch(() => {});
        session = undefined;
      }
      await new Promise((r) => setTimeout(r, this.pauseMs));
    }
    await session?.client.close().catch(() => {});
  }

  async stop(): Promise<TrafficReport> {
    this.running = false;
    await Promise.all(this.loops);
    return this.report;
  }
}
