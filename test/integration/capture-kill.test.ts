/**
 * The capture survives a killed gateway: real SDK clients call a tool on the real `everything`
 * sample through an API/gateway process (`mcpship api`), the process is SIGKILLed under that
 * traffic, and a new one is started on the same state folder. Every call that was answered must
 * then be stored exactly once, its request and its response: N answered calls, 2N documents.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ResultPromise } from 'execa';
import type { CaptureCounters } from '../../api/gateway/capture.ts';
import { capturedMessage, type MessageDoc } from '../../core/documents.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { setRouting } from '../../core/routing-store.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { startEverythingSample } from '../support/everything-sample.ts';
import { waitFor } from '../support/wait.ts';
import { startMcpshipProcess } from '../support/worker-process.ts';

const SERVICE = 'everything';
const TOOL = 'json_schema_2020_12_tool';
const CLIENTS = 4;
/** Answered calls before the kill: enough that some are in flight inside the gateway when it dies. */
const CALLS_BEFORE_KILL = 150;
const FOREVER = 2 ** 31 - 1;

const cleanup: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const config = testConfig({ MCPSHIP_API_PORT: String(await freePort()) });
const gatewayUrl = `http://127.0.0.1:${config.api.port}/mcp/${SERVICE}`;
let store: Store;

before(async () => {
  const sample = await startEverythingSample();
  const sampleUrl = sample.url;
  cleanup.push(sample.stop);

  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  cleanup.push(async () => {
    await store.db.dropDatabase();
    await store.close();
  });
  await ensureIndexes(store);
  await store.instances.insertOne({ instanceId: 'everything-1', service: SERVICE, version: '1.0.0', url: sampleUrl, state: 'ready', restarts: 0, updatedAt: new Date() } as never);
  await setRouting(store, SERVICE, { stable: '1.0.0', weights: { '1.0.0': 100 } });
});

function startApiProcess(): ResultPromise {
  const child = startMcpshipProcess('api', config);
  cleanup.push(async () => {
    child.kill('SIGTERM');
    await child;
  });
  return child;
}

async function gatewayUp(): Promise<void> {
  await waitFor('the gateway to answer', () => fetch(gatewayUrl).then((res) => res.status, () => undefined), FOREVER, 200);
}

/**
 * Clients calling the tool with a unique name each time until stopped; a call whose answer arrived
 * is recorded. A failure (the gateway is gone) drops the session and tries a new one.
 */
function traffic(answered: Set<string>, failures: string[], onAnswer: () => void) {
  let running = true;
  let wrong: Error | undefined;
  let next = 0;
  const loops = Array.from({ length: CLIENTS }, async () => {
    let client: Client | undefined;
    while (running) {
      const name = `n-${next++}`;
      try {
        if (!client) {
          client = new Client({ name: 'capture-kill', version: '1.0.0' });
          await client.connect(new StreamableHTTPClientTransport(new URL(gatewayUrl)));
        }
        const result = await client.callTool({ name: TOOL, arguments: { name, email: `${name}@example.com` } });
        const text = (result.content as { text?: string }[])[0]?.text ?? '';
        if (result.isError || !text.includes(`"name":"${name}"`)) {
          wrong = new Error(`the tool did not answer as expected: ${JSON.stringify(result).slice(0, 300)}`);
          break;
        }
        answered.add(name);
        onAnswer();
      } catch (err) {
        failures.push((err as Error).message);
        await client?.close().catch(() => undefined);
        client = undefined;
        await sleep(100);
      }
    }
    await client?.close().catch(() => undefined);
  });
  return {
    /** Throws as soon as a call was answered wrongly: waiting would not help. */
    check(): void {
      if (wrong) throw wrong;
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
      this.check();
    },
  };
}

/** Polls until check() is true; an error thrown by it ends the wait. */
async function until(check: () => boolean | Promise<boolean>, everyMs = 100): Promise<void> {
  while (!(await check())) await sleep(everyMs);
}

/** The tool name a captured tools/call request or its response carries. */
function nameOf(doc: MessageDoc): string | undefined {
  const msg = capturedMessage(doc) as { params?: { arguments?: { name?: unknown } }; result?: { content?: { text?: string }[] } };
  if (doc.direction === 'client_to_server') return typeof msg.params?.arguments?.name === 'string' ? msg.params.arguments.name : undefined;
  return /"name":"(n-\d+)"/.exec(msg.result?.content?.[0]?.text ?? '')?.[1];
}

test('an API process SIGKILLed under MCP traffic: after a new one starts, every answered call is stored once, request and response', async () => {
  const first = startApiProcess();
  await gatewayUp();

  const answered = new Set<string>();
  const failures: string[] = [];
  // Killed the moment an answer arrives: its messages were just captured, so the gateway holds
  // some not yet written to MongoDB (it writes every 200 ms).
  const load = traffic(answered, failures, () => {
    if (answered.size >= CALLS_BEFORE_KILL) first.kill('SIGKILL');
  });
  await until(() => (load.check(), first.exitCode !== null || first.signalCode !== null));
  await first;
  await until(() => failures.length > 0); // the clients have met the dead gateway
  await load.stop();
  const calls = [...answered];

  startApiProcess();
  await gatewayUp();
  const stored = async () => (await store.messages.find({ service: SERVICE }, { projection: { _id: 0 } }).toArray()).filter((d) => nameOf(d) !== undefined);
  // The new process adopts the dead one's journal when it starts, then loads it into MongoDB.
  const capture = async () => ((await (await fetch(`http://127.0.0.1:${config.api.port}/api/health/${SERVICE}`)).json()) as { capture: CaptureCounters | null }).capture;
  const adopted = await capture();
  assert.ok(adopted, 'the new gateway captures');
  await until(async () => (await capture())!.spillPending === 0, 500);
  const counters = (await capture())!;
  console.log(`${calls.length} answered calls; the new gateway adopted ${adopted.adopted} journaled messages, replayed ${counters.replayed}`);

  const docs = await stored();
  const seen = new Map<string, number>();
  for (const d of docs) {
    const key = `${d.direction} ${nameOf(d)}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const missing = calls.flatMap((n) => ['client_to_server', 'server_to_client'].map((dir) => `${dir} ${n}`)).filter((k) => !seen.has(k));
  assert.deepEqual(missing, [], 'every message of every answered call is stored');
  assert.deepEqual([...seen].filter(([, count]) => count > 1), [], 'none twice');
  assert.equal(new Set(docs.map((d) => d.messageId)).size, docs.length);
  const answeredSet = new Set(calls);
  // Calls cut by the kill may be stored too (their request reached the gateway): only those.
  const extra = docs.filter((d) => !answeredSet.has(nameOf(d)!));
  assert.ok(extra.length <= CLIENTS * 2, `at most the calls under way at the kill: ${extra.length}`);
});
