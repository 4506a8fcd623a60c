/**
 * The stdio bridge (runner/stdio-bridge.ts) with real processes and real MCP SDK clients: the
 * server is test/fixtures/stdio/dual-era-server.mjs (SDK v2, both protocol generations), copied
 * into a folder of this run so that its processes can be told from any other run's; clients are
 * the 1.x SDK (session revisions) and SDK v2 pinned to 2026-07-28 (stateless). Waits are for
 * conditions; nothing asserts on time.
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execa, execaSync } from 'execa';
import { createStdioBridge, type StdioBridge, type StdioBridgeOptions } from '../../runner/stdio-bridge.ts';
import { freePort } from '../../stack/ports.ts';
import { waitFor as pollUntil } from '../support/wait.ts';
import { processesMentioning } from '../support/processes.ts';
import { testStateDir } from '../support/stack-env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WAIT_MS = 120_000;

let dir = '';
let server = '';
const bridges: StdioBridge[] = [];

before(async () => {
  dir = testStateDir();
  server = path.join(dir, 'stdio-server.mjs');
  await copyFile(path.join(ROOT, 'test/fixtures/stdio/dual-era-server.mjs'), server);
});

after(async () => {
  await Promise.all(bridges.map((b) => b.close()));
  // Whatever a test left, nothing of this file's processes may outlive it.
  for (const pid of processesMentioning(dir)) process.kill(pid, 'SIGKILL');
});

async function bridge(options: Partial<StdioBridgeOptions> = {}): Promise<StdioBridge> {
  const created = await createStdioBridge({ command: 'node', args: [server], log: () => {}, ...options });
  bridges.push(created);
  return created;
}

/** Closes the bridge and checks that every process it had started is gone. */
async function closeBridge(b: StdioBridge): Promise<void> {
  const pids = [...b.sessions().map((s) => s.pid!), ...b.statelessPids(), ...(await b.sparePids())];
  assert.ok(pids.length > 0);
  await b.close();
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} outlived the bridge`);
  assert.deepEqual(processesMentioning(dir), [], 'nothing of this bridge is left');
}

/** The shared poll, with this file's guard; any falsy value (a count of 0, a null document) means not yet. */
const waitFor = <T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> => pollUntil(what, async () => (await check()) || undefined, WAIT_MS, 50);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Live (non-zombie) descendants of a process that run the stdio server (tsx's esbuild helper is not one). */
function serverDescendants(root: number): number[] {
  const { stdout } = execaSync('ps', ['-eo', 'pid=,ppid=,stat=,args='], { reject: false });
  const rows = stdout
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && !m[3]!.startsWith('Z'));
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const m of rows) {
      if (Number(m[2]) !== pid) continue;
      if (m[4]!.includes(server)) found.push(Number(m[1]));
      walk(Number(m[1]));
    }
  };
  walk(root);
  return found;
}

interface Answer {
  tag: string;
  pid: number;
}
const answerOf = (result: unknown): Answer => JSON.parse(((result as { content: { text: string }[] }).content[0]!).text) as Answer;

async function session(url: string) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'stdio-bridge-test', version: '0.0.0' });
  client.onerror = () => {};
  await client.connect(transport);
  return { client, transport };
}

async function statelessClient(url: string, name: string): Promise<ClientV2> {
  const client = new ClientV2({ name, version: '0.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new HttpTransportV2(new URL(url)));
  return client;
}

const MODERN_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28' };
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

test('stateless clients share the pool: many concurrent SDK v2 clients, each gets only its own answers and progress, no process per request', async () => {
  const b = await bridge({ statelessPool: 2, warmSpares: 1 });
  const clients = await Promise.all(Array.from({ length: 12 }, (_, i) => statelessClient(b.url, `client-${i}`)));
  const pids = new Set<number>();
  let mostProcesses = 0;
  await Promise.all(
    clients.map(async (client, i) => {
      for (let round = 0; round < 3; round++) {
        const tag = `c${i}-r${round}`;
        const progress: string[] = [];
        const [slow, quick] = await Promise.all([
          client.callTool({ name: 'slow', arguments: { tag, ms: 20, steps: 2 } }, { onprogress: (p) => void progress.push(String(p.message)) }),
          client.callTool({ name: 'whoami', arguments: { tag: `${tag}-quick` } }),
        ]);
        assert.equal(answerOf(slow).tag, tag, 'the answer to this client’s own request');
        assert.equal(answerOf(quick).tag, `${tag}-quick`);
        assert.deepEqual(progress, [tag, tag], 'progress of this client’s own request, all of it');
        pids.add(answerOf(slow).pid).add(answerOf(quick).pid);
        mostProcesses = Math.max(mostProcesses, processesMentioning(dir).length);
      }
    }),
  );
  assert.ok(pids.size >= 1 && pids.size <= 2, `72 requests served by the pool of 2, not a process each: ${[...pids].join(', ')}`);
  assert.deepEqual([...pids].sort(), [...b.statelessPids()].sort());
  assert.ok(mostProcesses <= 3, `pool (2) + warm spare (1) at most, saw ${mostProcesses}`);
  assert.deepEqual(b.sessions(), [], 'stateless requests open no session');
  await Promise.all(clients.map((c) => c.close()));
  await closeBridge(b);
});

test('a stateless request is answered by the 2026-07-28 HTTP rules: JSON, header/body mismatch 400 (Mcp-Name too), unknown method 404, notification 202', async () => {
  const b = await bridge({ statelessPool: 1 });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(b.url, { method: 'POST', headers: { ...MODERN_HEADERS, ...headers }, body: JSON.stringify(body) });

  const ok = await post({ jsonrpc: '2.0', id: 'mine', method: 'tools/call', params: { name: 'whoami', arguments: { tag: 'raw' }, _meta: ENVELOPE } }, { 'mcp-method': 'tools/call', 'mcp-name': 'whoami' });
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await ok.json()) as { id: string; result: unknown };
  assert.equal(body.id, 'mine', 'the client’s own id, not the one the bridge used at the process');
  assert.equal(answerOf(body.result).tag, 'raw');

  const mismatch = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: ENVELOPE } }, { 'mcp-method': 'tools/call' });
  assert.equal(mismatch.status, 400);
  assert.equal(((await mismatch.json()) as { error: { code: number } }).error.code, -32020);

  const unnamed = await post({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'whoami', arguments: { tag: 'x' }, _meta: ENVELOPE } }, { 'mcp-method': 'tools/call', 'mcp-name': 'other' });
  assert.equal(unnamed.status, 400, 'Mcp-Name must name the body’s tool: the stdio server cannot see headers, so the bridge checks');
  assert.match(((await unnamed.json()) as { error: { code: number; message: string } }).error.message, /Mcp-Name header names "other"/);

  const unknown = await post({ jsonrpc: '2.0', id: 3, method: 'nothing/here', params: { _meta: ENVELOPE } }, { 'mcp-method': 'nothing/here' });
  assert.equal(unknown.status, 404);
  assert.deepEqual(((await unknown.json()) as { id: number; error: { code: number } }).error.code, -32601);

  const notification = await post({ jsonrpc: '2.0', method: 'notifications/whatever', params: { _meta: ENVELOPE } });
  assert.equal(notification.status, 202);

  const legacyWithoutSession = await fetch(b.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
  assert.equal(legacyWithoutSession.status, 400, 'a session revision request without a session is still refused');
  await closeBridge(b);
});

test('subscriptions/listen through the pool: acknowledged, notified, and closing the stream cancels it at the process', async () => {
  const b = await bridge({ statelessPool: 1 });
  const client = await statelessClient(b.url, 'listener');
  let changes = 0;
  client.setNotificationHandler('notifications/tools/list_changed', () => void changes++);
  const subscription = await client.listen({ toolsListChanged: true });
  assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
  await client.callTool({ name: 'toggle-extra', arguments: {} });
  await waitFor('a tools/list_changed on the listen stream', () => changes >= 1);
  await subscription.close();
  assert.equal(await subscription.closed, 'local');
  // The shared process is still there and serving after the stream went away.
  assert.equal(answerOf(await client.callTool({ name: 'whoami', arguments: { tag: 'after' } })).tag, 'after');
  assert.equal(b.statelessPids().length, 1);
  await client.close();
  await closeBridge(b);
});

test('a new session is handed the warm spare, and a new spare takes its place', async () => {
  const b = await bridge({ warmSpares: 1 });
  const [spare] = await waitFor('a warm spare', async () => {
    const pids = await b.sparePids();
    return pids.length === 1 && pids;
  });
  const { client, transport } = await session(b.url);
  const [info] = b.sessions();
  assert.equal(info?.pid, spare, 'the session runs in the process that was already waiting');
  assert.equal(answerOf(await client.callTool({ name: 'whoami', arguments: { tag: 'warm' } })).pid, spare);
  const [next] = await waitFor('a replacement spare', async () => {
    const pids = await b.sparePids();
    return pids.length === 1 && pids[0] !== spare && pids;
  });
  assert.ok(alive(next!));
  await closeBridge(b);
  await client.close();
});

test('at most maxSessions sessions: the next initialize gets 503 with a clear JSON-RPC error, and ending one makes room', async () => {
  const b = await bridge({ maxSessions: 2, warmSpares: 0 });
  const first = await session(b.url);
  const second = await session(b.url);
  const refused = await fetch(b.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'third', version: '0' } } }),
  });
  assert.equal(refused.status, 503);
  const error = ((await refused.json()) as { id: number; error: { code: number; message: string } });
  assert.equal(error.id, 1);
  assert.match(error.error.message, /Too many sessions: this stdio service runs at most 2 sessions per instance/);
  await assert.rejects(session(b.url), 'an SDK client is refused too');
  assert.equal(b.sessions().length, 2, 'refused initializes start no process');

  const pid = b.sessions().find((s) => s.sessionId === first.transport.sessionId)!.pid!;
  await first.transport.terminateSession();
  await waitFor('the deleted session’s process gone', () => !alive(pid));
  const third = await session(b.url);
  assert.equal(answerOf(await third.client.callTool({ name: 'whoami', arguments: { tag: 'room' } })).tag, 'room');
  await closeBridge(b);
  for (const s of [first, second, third]) await s.client.close();
});

test('an idle session is ended with its process; its next request gets 404 and the client starts a new session', async () => {
  const b = await bridge({ sessionIdleMs: 3_000, warmSpares: 0 });
  // A session that always has a request in flight, from its initialize on, is never idle.
  const busy = await session(b.url);
  let stop = false;
  const busyPids = new Set<number>();
  const working = (async () => {
    while (!stop) busyPids.add(answerOf(await busy.client.callTool({ name: 'slow', arguments: { tag: 'busy', ms: 300, steps: 1 } })).pid);
  })();
  const idle = await session(b.url);
  const idlePid = answerOf(await idle.client.callTool({ name: 'whoami', arguments: { tag: 'idle' } })).pid;
  await waitFor('the idle session’s process ended', () => !alive(idlePid));
  stop = true;
  await working;
  const [busyPid] = busyPids;
  assert.equal(busyPids.size, 1);
  assert.ok(alive(busyPid!), 'a session in use is not ended');
  const stale = await fetch(b.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': idle.transport.sessionId!, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }),
  });
  assert.equal(stale.status, 404);
  await assert.rejects(idle.client.callTool({ name: 'whoami', arguments: { tag: 'late' } }), /404|Session not found/);
  await idle.client.close();
  // What the spec asks of the client on 404: a new session, which works.
  const again = await session(b.url);
  assert.equal(answerOf(await again.client.callTool({ name: 'whoami', arguments: { tag: 'again' } })).tag, 'again');
  await closeBridge(b);
  await again.client.close();
  await busy.client.close();
});

test('the bridge process: DELETE ends a session’s process, and SIGTERM ends every process it started', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const main = execa(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'runner/stdio-bridge-main.ts'), '--port', String(port), '--cwd', dir, '--stateless-pool', '2', '--warm-spares', '1', '--', 'node', server],
    { cwd: ROOT, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' },
  );
  await waitFor('the bridge listening', () => fetch(url).then((r) => r.status === 400, () => false));
  const a = await session(url);
  const b = await session(url);
  const stateless = await Promise.all([1, 2, 3, 4].map((i) => statelessClient(url, `s${i}`)));
  await Promise.all(stateless.map((c, i) => c.callTool({ name: 'slow', arguments: { tag: `s${i}`, ms: 50, steps: 1 } })));
  const aPid = answerOf(await a.client.callTool({ name: 'whoami', arguments: { tag: 'a' } })).pid;
  const children = serverDescendants(main.pid!);
  assert.ok(children.includes(aPid));
  // 2 sessions + at most 2 shared + 1 spare.
  assert.ok(children.length >= 3 && children.length <= 5, `the bridge's stdio servers: ${children.join(', ')}`);

  await a.transport.terminateSession();
  await waitFor('the deleted session’s process gone', () => !alive(aPid));

  main.kill('SIGTERM');
  const result = await main;
  assert.equal(result.exitCode, 0, result.stderr);
  await waitFor('every process the bridge started gone', () => children.every((pid) => !alive(pid)));
  assert.deepEqual(processesMentioning(dir), []);
  for (const c of stateless) await c.close().catch(() => {});
  await b.client.close().catch(() => {});
});

test('bad settings on the bridge command line are refused with the flag named', async () => {
  const result = await execa(process.execPath, ['--import', 'tsx', path.join(ROOT, 'runner/stdio-bridge-main.ts'), '--port', '0', '--stateless-pool', '0', '--', 'node', server], {
    cwd: ROOT,
    reject: false,
  });
  assert.equal(result.exitCode, 2);
  assert.match(result.stderr, /--stateless-pool: expected a positive integer/);
});
