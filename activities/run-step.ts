import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import { childEnv } from '../core/child-env.ts';
import { diskFullRetryable } from '../core/disk-full.ts';
import type { StepResult } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import { loadManifest } from '../core/manifest.ts';
import type { RunStepInput } from '../core/pipeline.ts';
import { fillModuleCache, moduleCacheDir } from './module-cache.ts';
import { killGroup, recordGroup } from './step-processes.ts';

const TAIL_BYTES = 4_000;
const HEARTBEAT_MS = 1_000;
const KILL_GRACE_MS = 2_000;

/** Keeps the last bytes of a stream of output. */
class Tail {
  private text = '';
  push(chunk: string) {
    this.text = (this.text + chunk).slice(-TAIL_BYTES);
  }
  get value() {
    return this.text;
  }
  get lastLine() {
    return this.text.trimEnd().split('\n').pop() ?? '';
  }
}

/**
 * The step's whole environment: the allow-list every service process gets (never the worker's
 * secrets), the manifest's own variables, and CI settings for plain, non-interactive output. Read
 * from the snapshot's manifest, so the values never pass through Temporal's history.
 */
async function stepEnv(dir: string): Promise<Record<string, string>> {
  const manifest = await loadManifest(dir);
  return { ...childEnv({ env: manifest.start.env, passEnv: manifest.passEnv }), CI: 'true', FORCE_COLOR: '0' };
}

/**
 * After a successful install, its node_modules become the cache entry for the lock file (in-process
 * copy and rename: no shell, no quoting). A failed fill costs the next save an install, nothing
 * more, so it is written to the step's log rather than failing a good validation.
 */
async function fillCache(stateDir: string, dir: string, cancelled: () => boolean): Promise<string> {
  const cacheDir = await moduleCacheDir(stateDir, dir);
  if (!cacheDir) return '';
  try {
    return `\n[mcpship] dependency cache ${cacheDir}: ${await fillModuleCache(cacheDir, dir, cancelled)}\n`;
  } catch (err) {
    return `\n[mcpship] dependency cache ${cacheDir} not filled: ${(err as Error).message}\n`;
  }
}

type StepDeps = { stateDir: string; events: EventStore };

export function runStepActivities(deps: StepDeps) {
  return {
    /**
     * Runs one validation command in the snapshot. A failing command is a result (ok: false), not
     * an exception; exceptions are left for infrastructure trouble, which Temporal retries.
     */
    runValidationStep(input: RunStepInput): Promise<StepResult> {
      // The step's log and process record go to the state dir: a full disk is waited out, not a failed step.
      return diskFullRetryable(`writing the ${input.plan.step} log of ${input.service} under ${path.join(deps.stateDir, 'logs', 'validation')}`, () => runStep(deps, input));
    },
  };
}

async function runStep(deps: StepDeps, input: RunStepInput): Promise<StepResult> {
  const { service, hash, dir, plan } = input;
  const ctx = Context.current();
  const env = await stepEnv(dir);
  const STEP = plan.step.toUpperCase();
  const logDir = path.join(deps.stateDir, 'logs', 'validation', service, hash.slice(0, 12));
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${plan.step}.log`);
  const log = createWriteStream(logFile);
  // A failed write (a full disk) must not crash the worker: it fails the attempt once the step is over.
  let logFailure: Error | undefined;
  log.on('error', (err) => (logFailure ??= err));
  log.write(`$ ${plan.command}\n`);
  const tail = new Tail();
  const started = Date.now();
  await deps.events.append({ service, kind: `${STEP}_STARTED`, status: 'running', details: { hash, command: plan.command, attempt: ctx.info.attempt } });

  const child = execa(plan.command, { shell: true, cwd: dir, detached: true, reject: false, all: true, buffer: false, stdin: 'ignore', env, extendEnv: false });
  const pgid = child.pid!;
  let forget: () => void;
  try {
    forget = recordGroup(deps.stateDir, pgid, dir);
  } catch (err) {
    // Unrecorded, no later worker could end it: it ends now.
    killGroup(pgid, 'SIGKILL');
    throw err;
  }
  child.all!.on('data', (chunk: Buffer) => {
    log.write(chunk);
    tail.push(chunk.toString());
  });

  let reason: string | undefined;
  const stop = (why: string) => {
    if (reason) return;
    reason = why;
    killGroup(pgid, 'SIGTERM');
    setTimeout(() => killGroup(pgid, 'SIGKILL'), KILL_GRACE_MS).unref();
  };
  const timeout = setTimeout(() => stop(`${plan.step} timed out after ${plan.timeoutSec} s`), plan.timeoutSec * 1000);
  const heartbeat = setInterval(() => ctx.heartbeat({ step: plan.step, elapsedMs: Date.now() - started, lastLine: tail.lastLine }), HEARTBEAT_MS);
  const onCancel = () => stop(`${plan.step} cancelled`);
  ctx.cancellationSignal.addEventListener('abort', onCancel);

  const result = await child;
  clearTimeout(timeout);
  clearInterval(heartbeat);
  ctx.cancellationSignal.removeEventListener('abort', onCancel);
  // The shell may be gone while its children still run; end the whole group either way.
  killGroup(pgid, 'SIGKILL');
  forget();
  const ok = !reason && result.exitCode === 0;
  if (ok && plan.step === 'install') log.write(await fillCache(deps.stateDir, dir, () => ctx.cancellationSignal.aborted));
  await new Promise<void>((resolve) => log.end(resolve));
  if (logFailure) throw logFailure;

  const durationMs = Date.now() - started;
  if (!ok && !reason) reason = `${plan.step} failed: \`${plan.command}\` exited with code ${result.exitCode}${tail.lastLine ? `: ${tail.lastLine}` : ''}`;
  const stepResult: StepResult = {
    step: plan.step,
    ok,
    exitCode: result.exitCode ?? null,
    durationMs,
    outputTail: tail.value,
    logFile,
    ...(reason ? { reason } : {}),
  };
  await deps.events.append({
    service,
    kind: ok ? `${STEP}_COMPLETE` : `${STEP}_FAILED`,
    status: ok ? 'ok' : 'failed',
    durationMs,
    details: { hash, exitCode: stepResult.exitCode, outputTail: tail.value.slice(-1_000), logFile, ...(reason ? { reason } : {}) },
  });
  if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  return stepResult;
}
