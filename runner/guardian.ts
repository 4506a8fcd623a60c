/**
 * Keeps the promise "no orphan processes" when the runner itself dies without stop(): instances
 * are detached process groups (so that they can be signalled as a whole), and detached groups do
 * not die with their parent. The guardian (guardian-main.ts) is told about every group and ends
 * the ones left when its pipe from the runner closes.
 */
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../core/log.ts';

const GUARDIAN_MAIN = fileURLToPath(new URL('./guardian-main.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');

export interface Guard {
  add(pgid: number): void;
  remove(pgid: number): void;
}

export class Guardian implements Guard {
  private child: ResultPromise | undefined;

  constructor(private readonly log: Logger) {}

  /** Starts the guardian process; an instance started before this is not guarded. */
  start(graceMs: number): void {
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

  /** Closing its stdin is the "runner gone" signal; with nothing listed the guardian just exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    child.stdin?.end();
    await child;
  }
}
