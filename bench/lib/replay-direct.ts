/**
 * The replay bench's baseline: a replay plan sent straight to a candidate and a stable instance
 * with the replay's own Conversation (same concurrency, same pairing of requests), without
 * Temporal, storage, noise or counts. What the workflow adds on top is the difference.
 */
import { Conversation } from '../../activities/replay-conversation.ts';
import type { ReplayPlan } from '../../compat/replay-select.ts';

export async function replayDirect(plan: ReplayPlan, urls: { candidate: string; stable: string }, concurrency: number): Promise<{ requests: number; ms: number }> {
  let next = 0;
  let requests = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < plan.units.length) {
      const unit = plan.units[next++]!;
      const open = (url: string) => new Conversation({ url, stateful: unit.stateful, timeoutMs: 30_000, clientAnswer: () => undefined });
      const [c, s] = [open(urls.candidate), open(urls.stable)];
      try {
        for (const step of unit.steps) {
          if (!step.message) continue;
          await Promise.all([c.send(step.message), s.send(step.message)]);
          if (step.compared) requests++;
        }
      } finally {
        await Promise.all([c.close(), s.close()]);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plan.units.length) }, worker));
  return { requests, ms: performance.now() - started };
}
