/**
 * Keeps the promise "no orphan processes" when the runner itself dies without stop(): instances
 * are detached process groups (so that they can be signalled as a whole), and detached groups do
 * not die with their parent. The guardian (guardian-main.ts) is told about every group and ends
 * the ones left when its pipe from the runner closes; told the node's lease, it ends that too, so
 * that the node's slots are re-placed at once rather than when the lease lapses.
 */
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../core/log.ts';
import type { LeaseHolder } from './node.ts';

const GUARDIAN_MAIN = fileURLToPath(new URL('./guardian-main.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');

/** The node lease the guardian ends when the runner dies, and the database it is kept in. */
export interface GuardedLease extends LeaseHolder {
  uri: string;
  database: string;
}

export interface Guard {
  add(pgid: number): void;
  remove(pgid: number): void;
}

export class Guardian implements Guard {
  private child: ResultPromise | undefined;

  constructor(private readonly log: Logger) {}

  /** Starts the guardian process; an instance started before this is not guarded. */
  start(graceMs: number, lease: GuardedLease): void {
    const child = execa(process.execPath, ['--import', TSX_LOADER, GUARDIAN_MAIN, String(graceMs)], {
      detached: true,
      cleanup: false,
      stdin: 'pipe',
      stdout: 'ignore',
      stderr: 'inherit',
      reject: false,
    });
    this.child = child;
    child.stdin?.on('error', () => {});
    // On the pipe rather than the command line: the URI may hold a password, and ps shows arguments.
    child.stdin?.write(`=${JSON.stringify(lease)}\n`);
    void child.then((result) => {
      if (this.child !== child) return; // ended by stop(), as it should
      this.child = undefined;
      this.log.warn({ exitCode: result.exitCode, signal: result.signal }, 'runner guardian ended; instances are unguarded should the runner die');
    });
  }

  add(pgid: number): void {
    this.child?.stdin?.write(`+${pgid}\n`);
  }

  remove(pgid: number): void {
    this.child?.stdin?.write(`-${pgid}\n`);
  }

  /** Closing its stdin is the "runner gone" signal; after the runner's own stop (the lease ended, nothing listed) the guardian just exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    child.stdin?.end('=\n');
    await child;
  }
}
