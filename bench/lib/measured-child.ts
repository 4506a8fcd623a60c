/**
 * A proxy under measurement in a process of its own (bench/lib/gateway-process.ts or
 * bench/lib/plain-hop.ts), talked to over IPC: nothing else runs on its event loop, so its CPU
 * per call is its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { childEnv, repoRoot } from './common.ts';
import type { GatewayReply } from './gateway-process.ts';

/**
 * Forks `bench/lib/<file>` of the checkout at `root` (another lets a bench compare two versions of
 * the code in one run) with `arg` as its JSON argument. It answers `stats`, and profiles on
 * request (bench/lib/child-profiler.ts).
 */
export function forkMeasured(file: string, arg: unknown, root = repoRoot): ChildProcess {
  return fork(path.join(root, 'bench', 'lib', file), [JSON.stringify(arg)], {
    execArgv: ['--import', 'tsx'],
    cwd: root,
    env: childEnv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The next reply of one kind from the child, after sending it `message` ('' sends nothing). */
export function ask<K extends GatewayReply['kind']>(child: ChildProcess, message: string, kind: K): Promise<Extract<GatewayReply, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: GatewayReply) => {
      if (reply.kind !== kind) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(reply as Extract<GatewayReply, { kind: K }>);
    };
    const onExit = (code: number | null) => reject(new Error(`the measured process exited with ${code}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message) child.send(message);
  });
}

/** Asks the child to close and waits for it to exit. */
export async function closeMeasured(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('close');
  await exited;
}
