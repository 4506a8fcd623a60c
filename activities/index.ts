import type { Config } from '../core/config.ts';
import type { Store } from '../core/mongo.ts';
import { selfCheckActivities } from './self-check.ts';

export interface ActivityDeps {
  config: Config;
  store: Store;
}

/** All activities, bound to their dependencies; workflows see only the type. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...selfCheckActivities(deps.store),
  };
}

export type Activities = ReturnType<typeof createActivities>;
