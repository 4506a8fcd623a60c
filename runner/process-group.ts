/**
 * Instance processes as process groups. Each instance is started detached (its own session and
 * process group), so that signalling the group reaches everything it started: a wrapper's
 * children, the stdio bridge's per-session servers. Output goes straight to a log file descriptor,
 * so an instance never depends on the runner reading a pipe.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export interface ProcessSpec {
  command: string;
  args: string[];
  cwd: string;
  /** The whole environment: nothing of the runner's own is inherited. */
  env: Record<string, string>;
}

export interface ExitInfo {
  exitCode: number | undefined;
  signal: string | undefined;
  /** Set when the process could not be started at all (e.g. command not found). */
  error?: string;
}

export interface GroupProcess {
  /** Also the process group id. */
  pid: number;
  exited: Promise<ExitInfo>;
  running(): boolean;
}

export function describeExit(exit: ExitInfo): string {
  if (exit.error) return exit.error;
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
}

export function spawnGroup(spec: ProcessSpec, logFile: string): GroupProcess {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  // execa passes a file descriptor straight to the child; its types only name the literals 3-9.
  const out = fd as 3;
  writeSync(fd, `\n--- ${new Date().toISOString()} ${spec.command} ${spec.args.join(' ')} (cwd ${spec.cwd})\n`);
  const start = () =>
    execa(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      extendEnv: false,
      detached: true,
      stdin: 'ignore',
      stdout: out,
      stderr: out,
      reject: false,
      cleanup: false,
    });
  let child: ReturnType<typeof start>;
  try {
    child = start();
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let done = false;
  const exited = child.then(
    (result): ExitInfo => {
      done = true;
      closeSync(fd);
      const error = result.failed && result.exitCode === undefined && !result.signal ? result.shortMessage : undefined;
      return { exitCode: result.exitCode, signal: result.signal, ...(error ? { error } : {}) };
    },
  );
  if (child.pid === undefined) {
    // spawn failed synchronously (ENOENT and the like); execa reports it through the promise.
    return { pid: -1, exited, running: () => false };
  }
  return { pid: child.pid, exited, running: () => !done };
}

/** Sends a signal to every process of the group; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (!(pgid > 1)) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true once no process of the group is left, false when `ms` pass first. */
async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (signalGroup(pgid, 0)) {
    if (performance.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * SIGTERM to the whole group, SIGKILL to whatever is left after `graceMs`. Resolves once the
 * leader has exited; never waits on processes that cannot die (zombies an init left unreaped).
 */
export async function terminateGroup(proc: GroupProcess, graceMs: number): Promise<void> {
  if (proc.pid <= 1) return;
  signalGroup(proc.pid, 'SIGTERM');
  if (!(await groupGone(proc.pid, graceMs))) {
    signalGroup(proc.pid, 'SIGKILL');
    await groupGone(proc.pid, 1_000);
  }
  await proc.exited;
}
