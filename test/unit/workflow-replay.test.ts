import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { repoRoot } from '../../stack/binaries.ts';
import { workflowsPath } from '../../workers/create-worker.ts';

// Histories recorded from real runs (MCPSHIP_RECORD_HISTORIES=1 npm test -- pipeline). Replaying them against
// today's workflow code fails when a change breaks determinism.
const dir = path.join(repoRoot, 'test', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

test('recorded workflow histories replay against the current workflow code', async () => {
  assert.ok(files.length >= 3, 'histories are recorded');
  const histories = files.map((file) => ({
    workflowId: file.replace(/\.bin$/, ''),
    history: proto.temporal.api.history.v1.History.decode(readFileSync(path.join(dir, file))),
  }));
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath }, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  assert.deepEqual(failures, []);
});
