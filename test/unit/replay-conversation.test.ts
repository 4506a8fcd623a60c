/**
 * The replay's conversation with a real MCP server process (test/fixtures/replay-service): a
 * captured session sent again in the server's own session, ids and progress tokens fresh, and the
 * server's sampling request in the middle of a call answered with the client's captured answer.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { Conversation } from '../../activities/replay-conversation.ts';
import { probeMcp } from '../../runner/readiness.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { waitFor } from '../support/wait.ts';

let server: ResultPromise;
let url: string;

before(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}/mcp`;
  server = execa(process.execPath, ['server.mjs'], { cwd: path.join(repoRoot, 'test', 'fixtures', 'replay-service'), env: { PORT: String(port) }, reject: false });
  await waitFor('the fixture server', () => probeMcp(url, 2_000).then(() => true), 30_000, 200);
});

after(async () => {
  server.kill('SIGTERM');
  await server;
});

const captured = {
  initialize: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'captured', version: '1' } } },
  initialized: { jsonrpc: '2.0', method: 'notifications/initialized' },
  ask: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'ask', arguments: { question: 'ok?' }, _meta: { progressToken: 'captured-token' } } },
};

test('a captured session replays in its own session; the sampling request is answered from the capture; ids come back as captured', async () => {
  const asked: string[] = [];
  const conversation = new Conversation({
    url,
    stateful: true,
    timeoutMs: 10_000,
    clientAnswer: (method) => {
      asked.push(method);
      return method === 'sampling/createMessage' ? { jsonrpc: '2.0', id: 3, result: { role: 'assistant', model: 'm', content: { type: 'text', text: 'captured yes' } } } : undefined;
    },
  });
  const init = await conversation.send(captured.initialize);
  assert.equal((init?.result as { serverInfo: { name: string } }).serverInfo.name, 'replay-fixture');
  assert.equal(init?.id, 0, 'the captured id is restored on the answer');
  assert.equal(await conversation.send(captured.initialized), undefined);
  const answer = await conversation.send(captured.ask);
  assert.equal(answer?.id, 7);
  const text = (answer?.result as { content: { text: string }[] }).content[0]!.text;
  assert.deepEqual(JSON.parse(text), { question: 'ok?', answer: 'captured yes', token: 'set' });
  assert.deepEqual(asked, ['sampling/createMessage']);
  assert.deepEqual(captured.ask.params._meta, { progressToken: 'captured-token' }, 'the captured message itself is not changed');
  await conversation.close();
});

test('without a captured answer the server gets an error, and the call says so instead of hanging', async () => {
  const conversation = new Conversation({ url, stateful: true, timeoutMs: 10_000, clientAnswer: () => undefined });
  await conversation.send(captured.initialize);
  await conversation.send(captured.initialized);
  const answer = await conversation.send(captured.ask);
  assert.ok(answer && ('error' in answer || (answer.result as { isError?: boolean }).isError), JSON.stringify(answer));
  assert.match(JSON.stringify(answer), /no client answer to sampling\/createMessage/);
  await conversation.close();
});
