/**
 * Readiness as a client sees it: an instance is ready when a real MCP client can initialize a
 * session and list the tools. The probe ends its session (DELETE), so a stdio bridge does not keep
 * a server process alive for it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface ProbeResult {
  tools: string[];
}

/** One attempt; throws when the endpoint is not (yet) a working MCP server. */
export async function probeMcp(url: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'mcpship-runner-probe', version: '1.0.0' });
  try {
    const options = { timeout: timeoutMs, ...(signal ? { signal } : {}) };
    await client.connect(transport, options);
    const { tools } = await client.listTools(undefined, options);
    await transport.terminateSession();
    return { tools: tools.map((t) => t.name) };
  } finally {
    await client.close().catch(() => {});
  }
}

export type ReadyOutcome = { ready: true; tools: string[] } | { ready: false; reason: string };

export interface WaitReadyOptions {
  timeoutMs: number;
  intervalMs: number;
  /** Checked between attempts: a process that already exited will never become ready. */
  alive: () => boolean;
  signal: AbortSignal;
}

/** Probes until the endpoint answers, the process dies, the time is up or the caller aborts. */
export async function waitReady(url: string, options: WaitReadyOptions): Promise<ReadyOutcome> {
  const started = performance.now();
  let lastError = 'no answer yet';
  for (;;) {
    if (options.signal.aborted) return { ready: false, reason: 'stopped before ready' };
    if (!options.alive()) return { ready: false, reason: `exited before ready (last probe: ${lastError})` };
    const left = options.timeoutMs - (performance.now() - started);
    if (left <= 0) return { ready: false, reason: `not ready within ${options.timeoutMs} ms (last probe: ${lastError})` };
    // The SDK leaves its abort listener on the signal it is given; a per-probe signal keeps the
    // instance's long-lived one from collecting a listener per attempt.
    const probe = new AbortController();
    const forward = () => probe.abort();
    options.signal.addEventListener('abort', forward, { once: true });
    try {
      const { tools } = await probeMcp(url, Math.max(1_000, Math.min(left, 10_000)), probe.signal);
      return { ready: true, tools };
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      options.signal.removeEventListener('abort', forward);
    }
    await sleep(options.intervalMs, undefined, { signal: options.signal }).catch(() => {});
  }
}
