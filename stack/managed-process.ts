import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';

export class StackStartError extends Error {
  override name = 'StackStartError';
}

/** A long-running stack binary: output goes to a log file, and its end is known. */
export class ManagedProcess {
  readonly logFile: string;
  private readonly child: ResultPromise;
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    logDir: string,
  ) {
    mkdirSync(logDir, { recursive: true });
    this.logFile = path.join(logDir, `${name}.log`);
    const log = createWriteStream(this.logFile, { flags: 'a' });
    log.write(`\n--- ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
    this.child = execa(command, args, { reject: false, stdin: 'ignore', buffer: false, cleanup: true });
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.exited = this.child.then((result) => {
      this.exitCode = result.exitCode ?? null;
      log.end();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** An error carrying the log tail, for a process that did not come up. */
  failure(reason: string): StackStartError {
    return new StackStartError(`${this.name} did not start: ${reason}\n--- last lines of ${this.logFile}:\n${this.tail()}`);
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Polls check until it resolves true, failing early if the process exits. */
  async waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      if (!this.running) throw this.failure(`it exited with code ${this.exitCode} before ${what}`);
      try {
        if (await check()) return;
      } catch (err) {
        lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw this.failure(`${what} did not happen within ${timeoutMs / 1000} s${lastError ? ` (last error: ${lastError})` : ''}`);
  }
}
