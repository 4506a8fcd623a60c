import type { Config } from '../core/config.ts';
import type { EventStore } from '../core/events.ts';
import type { Store } from '../core/mongo.ts';
import type { Client } from '@temporalio/client';
import { alertActivities } from '../alerts/notify-activities.ts';
import { deploymentActivities } from './deployment.ts';
import { recordActivities } from './records.ts';
import { replayActivities } from './replay.ts';
import { runStepActivities } from './run-step.ts';
import { selfCheckActivities } from './self-check.ts';
import { snapshotActivities } from './snapshot.ts';
import { transformActivities } from './transforms.ts';
import { versionActivities } from './versions.ts';

export interface ActivityDeps {
  config: Config;
  store: Store;
  events: EventStore;
  /** For activities that talk to other workflows (superseding a deployment). */
  temporal?: Client;
}

/** All activities, bound to their dependencies; workflows see only the type. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...selfCheckActivities(deps.store),
    ...recordActivities(deps),
    ...snapshotActivities(deps.config),
    ...runStepActivities({ stateDir: deps.config.stateDir, events: deps.events }),
    ...versionActivities(deps),
    ...deploymentActivities(deps),
    ...transformActivities(deps),
    ...replayActivities(deps),
    ...alertActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
