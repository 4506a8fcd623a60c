import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import type { DeploymentInput, DeploymentMode, DeploymentState } from '../core/deployment.ts';
import type { VersionDoc } from '../core/documents.ts';
import type { Store } from '../core/mongo.ts';
import { readRouting } from '../core/routing-store.ts';
import { McpService, McpStage, McpVersion } from '../core/search-attributes.ts';
import { compareVersions } from '../core/semver.ts';
import { deploymentWorkflowId } from '../core/workflow-ids.ts';
import { HttpError } from './errors.ts';

/**
 * States a version can be deployed from (a rollback is a deployment of an older version). BLOCKED
 * too: a blocked deployment ended from outside (terminated in Temporal) left it there, and one
 * still waiting for its override keeps the workflow id, so a second start is refused as running.
 */
const DEPLOYABLE: VersionDoc['state'][] = ['STAGED', 'ARCHIVED', 'ROLLED_BACK', 'ABORTED', 'BLOCKED'];

export type DeploymentControlName = 'promote' | 'pause' | 'resume' | 'abort' | 'setWeight' | 'override';

/** Starts deployments and sends them controls, through Temporal; the API and so the CLI use it. */
export class DeploymentControl {
  constructor(
    private readonly config: Config,
    private readonly store: Store,
    private readonly client: Client,
  ) {}

  private async version(service: string, version: string): Promise<VersionDoc> {
    const doc = await this.store.versions.findOne({ service, version });
    if (!doc) throw new HttpError(404, 'not_found', `no version ${version} of service ${service}`);
    return doc;
  }

  /** The newest deployment of a service that is running, else the newest one at all. */
  async current(service: string): Promise<{ workflowId: string; running: boolean } | undefined> {
    const base = `${McpService.name} = '${service}' AND WorkflowType = 'deploymentWorkflow'`;
    for (const query of [`${base} AND ExecutionStatus = 'Running'`, base]) {
      for await (const wf of this.client.workflow.list({ query, pageSize: 1 })) return { workflowId: wf.workflowId, running: wf.status.name === 'RUNNING' };
    }
    return undefined;
  }

  async state(service: string): Promise<DeploymentState & { workflowId: string; running: boolean }> {
    const current = await this.current(service);
    if (!current) throw new HttpError(404, 'not_found', `${service} has no deployment`);
    const state = await this.client.workflow.getHandle(current.workflowId).query<DeploymentState>('state');
    return { ...state, ...current };
  }

  async start(service: string, version: string, mode: DeploymentMode, reason?: string): Promise<{ workflowId: string }> {
    const doc = await this.version(service, version);
    if (!DEPLOYABLE.includes(doc.state)) throw new HttpError(409, 'not_deployable', `${service}@${version} is ${doc.state}; only ${DEPLOYABLE.join(', ')} versions can be deployed`);
    const workflowId = deploymentWorkflowId(service, version);
    const input: DeploymentInput = { service, version, mode, ...(reason ? { reason } : {}) };
    try {
      await this.client.workflow.start('deploymentWorkflow', {
        workflowId,
        taskQueue: this.config.temporal.taskQueue,
        args: [input],
        // A version may be deployed again after an earlier deployment of it ended.
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: McpService, value: service },
          { key: McpVersion, value: version },
          { key: McpStage, value: 'PREPARING' },
        ],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new HttpError(409, 'already_deploying', `${service}@${version} is already being deployed`);
      throw err;
    }
    return { workflowId };
  }

  /** Rolls back to the given version, or to the newest archived one older than the active version. */
  async rollback(service: string, version?: string): Promise<{ workflowId: string; version: string }> {
    let target = version;
    if (!target) {
      const { stable } = await readRouting(this.store, service);
      const archived = (await this.store.versions.find({ service, state: 'ARCHIVED' }).toArray())
        .map((v) => v.version)
        .filter((v) => !stable || compareVersions(v, stable) < 0)
        .sort(compareVersions);
      target = archived[archived.length - 1];
      if (!target) throw new HttpError(409, 'nothing_to_roll_back_to', `${service} has no archived version older than ${stable ?? 'the active one'}`);
    }
    return { ...(await this.start(service, target, 'rollback', 'rollback requested')), version: target };
  }

  async control(service: string, name: DeploymentControlName, arg?: unknown): Promise<DeploymentState> {
    const current = await this.current(service);
    if (!current?.running) throw new HttpError(409, 'no_deployment', `${service} has no deployment in progress`);
    try {
      const handle = this.client.workflow.getHandle(current.workflowId);
      return arg === undefined
        ? await handle.executeUpdate<DeploymentState, []>(name)
        : await handle.executeUpdate<DeploymentState, [unknown]>(name, { args: [arg] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new HttpError(409, 'control_refused', (err.cause as Error | undefined)?.message ?? err.message);
      // The deployment ended between the look-up and the Update ("aborted by closing workflow").
      if (err instanceof WorkflowNotFoundError) throw new HttpError(409, 'no_deployment', `${service} has no deployment in progress`);
      throw err;
    }
  }
}
