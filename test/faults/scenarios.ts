/**
 * The faults, each injected while LedgerLoad keeps calling through the gateway: a save is made,
 * the fault strikes at the moment named, and the save and its deployment are followed to their end.
 */
import { statfsSync } from 'node:fs';
import { appendFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../support/wait.ts';
import { rolloutOutcome, saveOutcome, type RolloutOutcome, type SaveOutcome } from './ledger.ts';
import { SERVICE, type FaultRig } from './rig.ts';

export interface ScenarioResult {
  saves: SaveOutcome[];
  rollouts: RolloutOutcome[];
  note: string;
}

export interface Scenario {
  name: string;
  what: string;
  run(rig: FaultRig): Promise<ScenarioResult>;
}

const OUTAGE_MS = 30_000;

/** A save whose fault strikes at its deployment's first canary step. */
async function midRamp(rig: FaultRig, fault: (canary: string) => Promise<string>): Promise<ScenarioResult> {
  const from = await rig.save();
  const save = await saveOutcome(rig, from);
  if (save.kind !== 'validated') return { saves: [save], rollouts: [], note: 'the save did not validate: no rollout to fault' };
  await rig.waitForEvent('the first canary step', from, (e) => e.kind === 'CANARY_STEP' && e.version === save.version);
  const note = await fault(save.version);
  return { saves: [save], rollouts: [await rolloutOutcome(rig, from, save.version)], note };
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'worker-kill',
    what: 'worker (with runner and watcher) SIGKILLed at the first canary step, a new one started',
    run: (rig) =>
      midRamp(rig, async () => {
        await rig.killWorker();
        rig.startWorker();
        return 'every instance ends with the runner (guardian), so calls fail until the new worker has them ready';
      }),
  },
  {
    name: 'api-kill',
    what: 'API/gateway process SIGKILLed at the first canary step, restarted on the same port',
    run: (rig) =>
      midRamp(rig, async () => {
        await rig.killApi();
        await rig.startApi();
        return 'calls fail while nothing listens; sessions live in MongoDB, so they carry on afterwards';
      }),
  },
  {
    name: 'canary-kill',
    what: "the canary's instance SIGKILLed at the first canary step",
    run: (rig) =>
      midRamp(rig, async (canary) => {
        const instance = await waitFor('a ready canary instance', () => rig.store.instances.findOne({ service: SERVICE, version: canary, state: 'ready', pid: { $exists: true } }).then((d) => d ?? undefined));
        process.kill(instance.pid!, 'SIGKILL');
        return `killed pid ${instance.pid}; its sessions get 404 and re-open`;
      }),
  },
  {
    name: 'runner-kill',
    what: 'worker process (runner inside) SIGKILLed while a save is being validated, a new one started',
    run: async (rig) => {
      const from = await rig.save();
      await rig.waitForEvent('the validation to start', from, (e) => e.kind === 'VALIDATING');
      await rig.killWorker();
      rig.startWorker();
      const save = await saveOutcome(rig, from);
      const rollouts = save.kind === 'validated' ? [await rolloutOutcome(rig, from, save.version)] : [];
      return { saves: [save], rollouts, note: 'the runner runs inside the worker process: its instances end with it' };
    },
  },
  {
    name: 'mongo-stop',
    what: `MongoDB (FerretDB) stopped for ${OUTAGE_MS / 1000} s at the first canary step`,
    run: (rig) =>
      midRamp(rig, async () => {
        await rig.stopMongo();
        await sleep(OUTAGE_MS);
        await rig.startMongo();
        return 'restarted on the same port and data';
      }),
  },
  {
    name: 'temporal-stop',
    what: `Temporal stopped for ${OUTAGE_MS / 1000} s at the first canary step`,
    run: (rig) =>
      midRamp(rig, async () => {
        await rig.stopTemporal();
        await sleep(OUTAGE_MS);
        await rig.startTemporal();
        return 'restarted on the same port and database file';
      }),
  },
  {
    name: 'disk-full',
    what: 'the state disk filled up, a save made, the space freed again: the save goes out with no other save',
    run: async (rig) => {
      if (!rig.stateDisk.startsWith('tmpfs')) return { saves: [], rollouts: [], note: `skipped: the state dir is a ${rig.stateDisk}, and filling it would fill the machine's disk` };
      const filler = path.join(rig.stateDir, 'filler.bin');
      const chunk = Buffer.alloc(1024 * 1024);
      try {
        for (;;) await appendFile(filler, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
      const from = await rig.save();
      const { bavail, bsize } = statfsSync(rig.stateDir);
      // The save is expected to wait for space (VALIDATION_WAITING); an end while full is reported as it is.
      const whileFull = await rig.waitForEvent('the save to wait for space, or to end', from, (e) => ['VALIDATION_WAITING', 'STAGED', 'VALIDATION_FAILED'].includes(e.kind)).catch(() => undefined);
      await rm(filler);
      const freedAt = Date.now();
      const save = await saveOutcome(rig, from);
      const afterSec = ((Date.now() - freedAt) / 1000).toFixed(0);
      const rollouts = save.kind === 'validated' ? [await rolloutOutcome(rig, from, save.version)] : [];
      // A save refused for want of space is a change that never goes out unless the developer saves again: lost.
      const saves: SaveOutcome[] = [save.kind === 'failed' ? { kind: 'lost' } : save];
      const reason = whileFull ? String((whileFull.details as { reason?: unknown } | undefined)?.reason ?? '') : '';
      const during = whileFull ? `${whileFull.kind}${reason ? ` (${reason.slice(0, 400)})` : ''}` : 'nothing';
      const outcome = save.kind === 'failed' ? `refused (${save.reason.slice(0, 200)})` : save.kind;
      return { saves, rollouts, note: `${bavail * bsize} bytes left; while full: ${during}; with the space freed and no other save, the save was ${outcome} ${afterSec} s later` };
    },
  },
];
