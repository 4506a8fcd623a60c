/**
 * An instance that refuses connections (its process, or its node's relay, is gone while MongoDB
 * still lists it ready): the gateway sends requests that no session ties to it — initialize, and
 * 2026-07-28 stateless requests — to another instance at once, the same version first; a session
 * on it gets the spec's 404. Real dual-mode servers as processes (one killed), MongoDB from the
 * test stack, real SDK clients.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client as SessionClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as SessionTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ResultPromise } from 'execa';
import express from 'express';
import { createGateway } from '../../api/gateway/gateway.ts';
import type { ExchangeContext, TrafficObserver } from '../../api/gateway/traffic.ts';
import type { Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { keyedDraw, weightListOf } from '../../core/routing.ts';
import { startDualModeFixture } from '../support/dual-mode-fixture.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const GUARD = { timeout: 300_000 };
const log = createLogger('error', 'gateway-refused-test');

let config: Config;
let store: Store;
const children = new Map<string, ResultPromise>();
const urls: Record<string, string> = {};
const cleanups: (() => Promise<void>)[] = [];

/** The context of every finished exchange: which instance answered in the end. */
class Recorder implements TrafficObserver {
  ends: ExchangeContext[] = [];
  message(): void {}
  exchangeEnd(ctx: ExchangeContext): void {
    this.ends.push({ ...ctx });
  }
}

async function startFixture(name: string, version: string): Promise<void> {
  const { child, url } = await startDualModeFixture({ VERSION: version });
  children.set(name, child);
  urls[name] = url;
}

/** Killed outright: its port refuses connections, while MongoDB still lists the instance ready. */
async function kill(name: string): Promise<void> {
  const child = children.get(name)!;
  child.kill('SIGKILL');
  await child;
}

async function register(service: string, version: string, instanceId: string, url: string): Promise<void> {
  await store.instances.updateOne({ instanceId }, { $set: { service, version, url, state: 'ready', restarts: 0, updatedAt: new Date() }, $setOnInsert: { instanceId } }, { upsert: true });
}

async function route(service: string, weights: Record<string, number>): Promise<void> {
  await store.routing.replaceOne({ service }, { service, stable: '1.0.0', weights: {}, weightList: weightListOf(weights), pulled: [], updatedAt: new Date() }, { upsert: true });
}

/** A gateway of its own per test: what one learned about refusing instances must not help the next. */
async function startGateway(): Promise<{ base: string; recorder: Recorder }> {
  const recorder = new Recorder();
  const gateway = createGateway({ config, store, log, observer: recorder });
  const app = express();
  app.use('/mcp', gateway.router);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  cleanups.push(async () => {
    await gateway.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, recorder };
}

async function sessionClient(url: string): Promise<{ client: SessionClient; transport: SessionTransport }> {
  const client = new SessionClient({ name: 'refused-test', version: '1.0.0' });
  const transport = new SessionTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

function text(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

before(async () => {
  config = testConfig();
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);
  await Promise.all([startFixture('a', '1.0.0'), startFixture('b', '1.0.0'), startFixture('c', '2.0.0')]);
  // dual: two instances of 1.0.0 (a is the one that dies). other: 1.0.0 only on a, 2.0.0 on c.
  await register('dual', '1.0.0', 'dual-1.0.0-a', urls.a!);
  await register('dual', '1.0.0', 'dual-1.0.0-b', urls.b!);
  await route('dual', { '1.0.0': 100 });
  await register('other', '1.0.0', 'other-1.0.0-a', urls.a!);
  await register('other', '2.0.0', 'other-2.0.0-c', urls.c!);
  await route('other', { '1.0.0': 90, '2.0.0': 10 });
});

after(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => {});
  for (const child of children.values()) child.kill('SIGKILL');
  await Promise.allSettled(children.values());
  if (store) {
    await store.db.dropDatabase().catch(() => {});
    await store.close();
  }
});

test('new sessions meant for a refusing instance open on another instance of the version; a session already on it gets 404', GUARD, async () => {
  const { base, recorder } = await startGateway();
  // Round robin over instances ordered by id: the first new session goes to a.
  const onA = await sessionClient(`${base}/dual`);
  assert.equal(recorder.ends.at(-1)?.instanceId, 'dual-1.0.0-a');
  await kill('a');

  await assert.rejects(onA.client.callTool({ name: 'whoami', arguments: {} }), (err) => err instanceof StreamableHTTPError && err.code === 404, 'a session is not moved: the client hears 404 and opens a new one');
  await onA.client.close();

  const before = recorder.ends.length;
  for (let i = 0; i < 6; i++) {
    const { client, transport } = await sessionClient(`${base}/dual`);
    assert.equal(text(await client.callTool({ name: 'whoami', arguments: {} })), '1.0.0');
    await transport.terminateSession();
    await client.close();
  }
  const served = recorder.ends.slice(before);
  assert.ok(served.length >= 6 * 3, `every exchange of the new sessions was recorded (${served.length})`);
  assert.deepEqual([...new Set(served.map((c) => c.instanceId))], ['dual-1.0.0-b'], 'all answered by b');
});

test('stateless (2026-07-28) requests of a client keyed to a refusing instance are answered by another one', GUARD, async () => {
  const { base, recorder } = await startGateway();
  // Client keys whose keyed draw picks the first of the two instances (a, dead since the test above).
  const keys = Array.from({ length: 40 }, (_, i) => `refused-${i}`).filter((k) => keyedDraw('dual', `client:${k}`).turn % 2 === 0).slice(0, 3);
  assert.equal(keys.length, 3);
  for (const key of keys) {
    const transport = new ModernTransport(new URL(`${base}/dual`), { requestInit: { headers: { 'x-mcpship-client': key } } });
    const client = new ModernClient({ name: key, version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(transport);
    assert.equal(transport.protocolVersion, '2026-07-28');
    assert.equal(text(await client.callTool({ name: 'whoami', arguments: {} })), '1.0.0');
    await client.close();
  }
  const stateless = recorder.ends.filter((c) => c.generation === 'stateless');
  assert.ok(stateless.length >= keys.length);
  assert.ok(stateless.every((c) => c.instanceId === 'dual-1.0.0-b'), 'all answered by b');
});

test('with no other instance of its version left, a new session opens on another routable version', GUARD, async () => {
  const { base } = await startGateway();
  // other's 1.0.0 (90%) has only the dead a; its 2.0.0 (10%) is alive.
  for (let i = 0; i < 4; i++) {
    const { client, transport } = await sessionClient(`${base}/other`);
    assert.equal(client.getServerVersion()?.version, '2.0.0');
    await transport.terminateSession();
    await client.close();
  }
});
