import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { repoRoot } from '../../stack/binaries.ts';

/**
 * Keeps a real run's history as test/histories/<name>.bin for the replay test
 * (test/unit/workflow-replay.test.ts); tests call it when MCPSHIP_RECORD_HISTORIES is set.
 */
export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  // Binary protobuf: the SDK's JSON history loader trips over two protobufjs copies in the tree.
  await writeFile(path.join(repoRoot, 'test', 'histories', `${name}.bin`), proto.temporal.api.history.v1.History.encode(history).finish());
}
