/**
 * The shared stdio process's routing (runner/stdio-mux.ts) against a scripted stdio server on an
 * in-memory transport: clients choose colliding JSON-RPC ids and progress tokens, the server
 * answers in any order, and every client must get exactly its own messages back, with its own ids.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { JSONRPCMessage, JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { LOG_LEVEL_KEY, SharedChild, SUBSCRIPTION_ID_KEY, type Exchange } from '../../runner/stdio-mux.ts';

function recorder() {
  const messages: JSONRPCMessage[] = [];
  const ended: string[] = [];
  const exchange: Exchange = { deliver: (m) => void messages.push(m), end: (reason) => void ended.push(reason) };
  return { ...exchange, messages, ended };
}

/** A SharedChild wired to a scripted server side that records what reaches it. */
async function pair() {
  const [bridgeSide, serverSide] = InMemoryTransport.createLinkedPair();
  const received: JSONRPCMessage[] = [];
  serverSide.onmessage = (m) => void received.push(m);
  await serverSide.start();
  await bridgeSide.start();
  const exits: SharedChild[] = [];
  const logs: string[] = [];
  const child = new SharedChild(bridgeSide, 1234, (line) => logs.push(line), (c) => exits.push(c));
  const serverSend = (m: Record<string, unknown>) => serverSide.send({ jsonrpc: '2.0', ...m } as JSONRPCMessage);
  return { child, received, serverSend, serverSide, exits, logs };
}

const request = (id: string | number, tag: string, meta: Record<string, unknown> = {}, method = 'tools/call'): JSONRPCRequest => ({
  jsonrpc: '2.0',
  id,
  method,
  params: { name: 'whoami', arguments: { tag }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', ...meta } },
});

const tagOf = (m: JSONRPCMessage) => ((m as JSONRPCRequest).params as { arguments: { tag: string } }).arguments.tag;

test('colliding ids and progress tokens from many clients, answered in any order, each reach their own client', async () => {
  const clientRequest = fc.record({ id: fc.oneof(fc.constantFrom(0, 1, 2), fc.constantFrom('a', '1')), token: fc.option(fc.constantFrom(0, 1, 'p'), { nil: undefined }) });
  await fc.assert(
    fc.asyncProperty(fc.array(clientRequest, { minLength: 1, maxLength: 12 }), fc.infiniteStream(fc.nat()), async (requests, order) => {
      const { child, received, serverSend } = await pair();
      const exchanges = requests.map(() => recorder());
      requests.forEach((r, i) => child.dispatch(request(r.id, `t${i}`, r.token === undefined ? {} : { progressToken: r.token }), exchanges[i]!));
      await Promise.resolve();
      const childIds = received.map((m) => (m as JSONRPCRequest).id);
      assert.equal(new Set(childIds).size, requests.length, 'every request has an id of its own at the process');

      // The server answers in an arbitrary order, with progress first where it was asked for.
      const pending = [...received] as JSONRPCRequest[];
      const it = order[Symbol.iterator]();
      while (pending.length) {
        const [next] = pending.splice(it.next().value! % pending.length, 1) as [JSONRPCRequest];
        const token = (next.params?._meta as Record<string, unknown>).progressToken;
        if (token !== undefined) await serverSend({ method: 'notifications/progress', params: { progressToken: token, progress: 1, message: tagOf(next) } });
        await serverSend({ id: next.id, result: { content: [{ type: 'text', text: tagOf(next) }] } });
      }

      requests.forEach((r, i) => {
        const got = exchanges[i]!.messages;
        const response = got.at(-1) as unknown as { id: unknown; result: { content: { text: string }[] } };
        assert.equal(response.id, r.id, 'the response carries the client’s own id');
        assert.equal(response.result.content[0]!.text, `t${i}`, 'and answers the client’s own request');
        const progress = got.slice(0, -1) as unknown as { params: { progressToken: unknown; message: string } }[];
        assert.equal(progress.length, r.token === undefined ? 0 : 1);
        for (const p of progress) assert.deepEqual([p.params.progressToken, p.params.message], [r.token, `t${i}`]);
      });
      assert.equal(child.load, 0);
    }),
    { numRuns: 200 },
  );
});

test('a subscription gets its notifications with its own id as subscription id, and closing it cancels at the process', async () => {
  const { child, received, serverSend } = await pair();
  const a = recorder();
  const b = recorder();
  const cancelA = child.dispatch(request(7, 'a', {}, 'subscriptions/listen'), a);
  child.dispatch(request(7, 'b', {}, 'subscriptions/listen'), b);
  const [childA, childB] = received.map((m) => (m as JSONRPCRequest).id);
  await serverSend({ method: 'notifications/subscriptions/acknowledged', params: { _meta: { [SUBSCRIPTION_ID_KEY]: childB }, notifications: { toolsListChanged: true } } });
  await serverSend({ method: 'notifications/tools/list_changed', params: { _meta: { [SUBSCRIPTION_ID_KEY]: childA } } });
  assert.deepEqual(a.messages.map((m) => [(m as JSONRPCRequest).method, (m as JSONRPCRequest).params?._meta?.[SUBSCRIPTION_ID_KEY]]), [['notifications/tools/list_changed', 7]]);
  assert.deepEqual(b.messages.map((m) => (m as JSONRPCRequest).method), ['notifications/subscriptions/acknowledged']);
  assert.equal(child.load, 0, 'subscriptions are not load');

  cancelA();
  await Promise.resolve();
  assert.deepEqual(received.at(-1), { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: childA, reason: 'The client went away' } });
  await serverSend({ method: 'notifications/tools/list_changed', params: { _meta: { [SUBSCRIPTION_ID_KEY]: childA } } });
  assert.equal(a.messages.length, 1, 'nothing after the cancel');

  // A graceful end: the server answers the listen request; its result names the subscription.
  await serverSend({ id: childB, result: { resultType: 'complete', _meta: { [SUBSCRIPTION_ID_KEY]: childB } } });
  assert.deepEqual(b.messages.at(-1), { jsonrpc: '2.0', id: 7, result: { resultType: 'complete', _meta: { [SUBSCRIPTION_ID_KEY]: 7 } } });
});

test('log messages go to the one request that asked for them, never to another client', async () => {
  const { child, received, serverSend, logs } = await pair();
  const quiet = recorder();
  const asking = recorder();
  child.dispatch(request(1, 'quiet'), quiet);
  child.dispatch(request(1, 'asking', { [LOG_LEVEL_KEY]: 'info' }), asking);
  await serverSend({ method: 'notifications/message', params: { level: 'info', data: 'hello' } });
  assert.equal(quiet.messages.length, 0);
  assert.equal(asking.messages.length, 1);
  assert.equal(child.loggingRequests, 1);

  const second = recorder();
  child.dispatch(request(2, 'second', { [LOG_LEVEL_KEY]: 'info' }), second);
  await serverSend({ method: 'notifications/message', params: { level: 'info', data: 'whose?' } });
  assert.deepEqual([asking.messages.length, second.messages.length, quiet.messages.length], [1, 0, 0], 'ambiguous: dropped');
  assert.match(logs.at(-1)!, /dropped/);
  assert.equal(received.length, 3);
});

test('a server request is refused at the process; the process exiting ends every open request', async () => {
  const { child, received, serverSend, serverSide, exits } = await pair();
  const open = recorder();
  child.dispatch(request('x', 'open'), open);
  await serverSend({ id: 99, method: 'sampling/createMessage', params: {} });
  assert.deepEqual((received.at(-1) as { id: number; error: { code: number } }).id, 99);
  assert.equal((received.at(-1) as { error: { code: number } }).error.code, -32601);

  await serverSide.close();
  assert.deepEqual(open.ended, ['The stdio MCP server exited']);
  assert.deepEqual(exits, [child]);
  assert.equal(child.alive, false);
});
