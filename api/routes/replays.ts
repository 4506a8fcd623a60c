import { Router } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { ReplayInput } from '../../compat/replay-types.ts';
import type { Config } from '../../core/config.ts';
import type { ReplayReportDoc } from '../../core/documents.ts';
import type { EventStore } from '../../core/events.ts';
import type { Store } from '../../core/mongo.ts';
import { replayStore } from '../../core/replay-store.ts';
import { McpService, McpVersion } from '../../core/search-attributes.ts';
import { VERSION_PATTERN } from '../../core/manifest.ts';
import { replayWorkflowId } from '../../core/workflow-ids.ts';
import type { DeploymentControl } from '../deployment-control.ts';
import { settleClosedReplays } from '../replay-settle.ts';
import { HttpError } from '../errors.ts';
import { intParam, serviceParam } from '../params.ts';

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO date-time');
const names = z.array(z.string().min(1).max(200)).max(1_000);

const StartBody = z
  .object({
    version: z.string().regex(VERSION_PATTERN, 'expected x.y.z'),
    baseline: z.string().regex(VERSION_PATTERN, 'expected x.y.z').optional(),
    since: isoDate.optional(),
    until: isoDate.optional(),
    tools: names.optional(),
    clients: names.optional(),
    sampleSize: z.number().int().min(1).max(1_000_000).optional(),
    trigger: z.enum(['api', 'cli']).default('api'),
  })
  .strict();

/** POST /api/services/<name>/replays: the run id is the replay's id. */
export interface ReplayStarted {
  workflowId: string;
  replayId: string;
}

/** GET /api/services/<name>/replays: the newest reports, without their samples and per-tool detail (GET .../replays/<id> has the whole ReplayReportDoc). */
export interface ReplayList {
  service: string;
  replays: Omit<ReplayReportDoc, 'samples' | 'noisyPaths' | 'perTool'>[];
}

function parseBody(body: unknown): z.infer<typeof StartBody> {
  const parsed = StartBody.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  throw new HttpError(400, 'bad_request', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
}

/**
 * Differential replay runs (issue 9): POST /api/services/<name>/replays starts one, GET lists and
 * reads reports (with progress while running), POST .../replays/<id>/cancel stops one; and the
 * replay gate's override, POST /api/services/<name>/deployment/override {reason}.
 */
export function replaysRouter(deps: { config: Config; store: Store; events: EventStore; temporal: Client; control: DeploymentControl }): Router {
  const { config, store, temporal, events } = deps;
  const router = Router();

  router.post('/services/:name/replays', async (req, res) => {
    const service = serviceParam(req.params.name);
    const body = parseBody(req.body);
    if (!(await store.versions.findOne({ service, version: body.version }))) throw new HttpError(404, 'not_found', `no version ${body.version} of service ${service}`);
    const { version, trigger, ...selection } = body;
    const input: ReplayInput = { service, candidate: version, selection, trigger };
    const workflowId = replayWorkflowId(service, version);
    try {
      const handle = await temporal.workflow.start('replayWorkflow', {
        workflowId,
        taskQueue: config.temporal.taskQueue,
        args: [input],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: McpService, value: service },
          { key: McpVersion, value: version },
        ],
      });
      // The run id is the replay's id: its report is stored under it.
      res.status(202).json({ workflowId, replayId: handle.firstExecutionRunId } satisfies ReplayStarted);
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new HttpError(409, 'already_replaying', `a replay of ${service}@${version} is already running (${workflowId})`);
      throw err;
    }
  });

  router.get('/services/:name/replays', async (req, res) => {
    const service = serviceParam(req.params.name);
    const limit = intParam(req.query.limit, 'limit', 20, 1)!;
    const replays = await replayStore(store);
    const list = await replays.reports
      .find({ service }, { projection: { _id: 0, samples: 0, noisyPaths: 0, perTool: 0 } })
      .sort({ startedAt: -1 })
      .limit(Math.min(limit, 200))
      .toArray();
    res.json({ service, replays: await settleClosedReplays({ replays, temporal, events }, list) } satisfies ReplayList);
  });

  router.get('/services/:name/replays/:replayId', async (req, res) => {
    const service = serviceParam(req.params.name);
    const replays = await replayStore(store);
    const report = await replays.reports.findOne({ service, replayId: String(req.params.replayId) }, { projection: { _id: 0 } });
    if (!report) throw new HttpError(404, 'not_found', `no replay ${req.params.replayId} of service ${service}`);
    res.json((await settleClosedReplays({ replays, temporal, events }, [report]))[0]);
  });

  router.post('/services/:name/replays/:replayId/cancel', async (req, res) => {
    const service = serviceParam(req.params.name);
    const { reports } = await replayStore(store);
    const report = await reports.findOne({ service, replayId: String(req.params.replayId) });
    if (!report) throw new HttpError(404, 'not_found', `no replay ${req.params.replayId} of service ${service}`);
    if (report.status !== 'RUNNING') throw new HttpError(409, 'not_running', `replay ${report.replayId} is ${report.status}`);
    try {
      await temporal.workflow.getHandle(report.workflowId, report.replayId).cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(409, 'not_running', `replay ${report.replayId} has ended`);
      throw err;
    }
    res.status(202).json({ replayId: report.replayId, cancelling: true });
  });

  router.post('/services/:name/deployment/override', async (req, res) => {
    const service = serviceParam(req.params.name);
    const reason = req.body?.reason;
    if (typeof reason !== 'string' || !reason.trim()) throw new HttpError(400, 'bad_request', 'an override needs a JSON body {"reason": "why the blocked version may go on"}');
    res.json(await deps.control.control(service, 'override', reason));
  });

  return router;
}
