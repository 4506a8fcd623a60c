import type { Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import type { SaveSignal, ServiceWorkflowInput } from '../core/pipeline.ts';
import { McpService, McpStage } from '../core/search-attributes.ts';
import { serviceWorkflowId } from '../core/workflow-ids.ts';

/**
 * Hands a save to the service's workflow, starting the workflow if it is not running: the one
 * entry point from the file system into Temporal.
 */
export async function signalSave(client: Client, config: Config, service: string, save: SaveSignal): Promise<void> {
  const input: ServiceWorkflowInput = { service };
  await client.workflow.signalWithStart('serviceWorkflow', {
    workflowId: serviceWorkflowId(service),
    taskQueue: config.temporal.taskQueue,
    args: [input],
    signal: 'save',
    signalArgs: [save],
    typedSearchAttributes: [
      { key: McpService, value: service },
      { key: McpStage, value: 'DEVELOPMENT' },
    ],
  });
}
