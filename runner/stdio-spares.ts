/**
 * stdio server processes for the bridge: how one is started, and a few started ahead of demand.
 * Starting a process (a Node server loading its SDK) takes hundreds of milliseconds, far more than
 * serving a request, so a new session takes a process that is already running (a warm spare) and
 * a replacement is started at once. A spare that dies while it waits is replaced after a backoff,
 * so a server that cannot start does not turn into a restart loop.
 */
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { backoffDelay } from './backoff.ts';

export interface ChildSpec {
  command: string;
  args?: string[];
  cwd?: string;
  /** Laid over the SDK's safe default environment (PATH, HOME, ...). */
  env?: Record<string, string>;
}

/** A started stdio server; the caller sets its onmessage / onclose. */
export async function startChild(spec: ChildSpec): Promise<StdioClientTransport> {
  const transport = new StdioClientTransport({
    command: spec.command,
    args: spec.args ?? [],
    ...(spec.cwd ? { cwd: spec.cwd } : {}),
    ...(spec.env ? { env: spec.env } : {}),
    // The child's log lines join the bridge's, which the runner writes to the instance log.
    stderr: 'inherit',
  });
  await transport.start();
  return transport;
}

interface Spare {
  child: Promise<StdioClientTransport>;
  taken: boolean;
}

export class WarmSpares {
  private readonly waiting: Spare[] = [];
  /** Spares in a row that died before anyone took them. */
  private failures = 0;
  private refill: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly start: () => Promise<StdioClientTransport>,
    private readonly count: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts spares up to the count (none while a backoff after a failure runs). */
  fill(): void {
    if (this.closed || this.refill) return;
    while (this.waiting.length < this.count) this.waiting.push(this.spawn());
  }

  /**
   * A running process: the oldest spare (warm, or at least already on its way), else a new one.
   * A replacement spare is started at once.
   */
  async take(): Promise<StdioClientTransport> {
    const spare = this.waiting.shift();
    if (!spare) return this.start();
    spare.taken = true;
    this.fill();
    const child = await spare.child;
    // It may have exited between its last check and now; a session needs a live one.
    if (child.pid === null) return this.start();
    this.failures = 0;
    return child;
  }

  /** Pids of the spares that are running, oldest first. */
  async pids(): Promise<number[]> {
    const children = await Promise.all(this.waiting.map((s) => s.child.catch(() => undefined)));
    return children.flatMap((c) => (c?.pid ? [c.pid] : []));
  }

  /** Ends every spare; none is started afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refill);
    const left = this.waiting.splice(0);
    await Promise.all(left.map((s) => s.child.then((c) => c.close(), () => {})));
  }

  private spawn(): Spare {
    const spare: Spare = { taken: false, child: this.start() };
    spare.child.then(
      (child) => {
        if (spare.taken) return;
        if (this.closed) return void child.close();
        child.onclose = () => this.lost(spare, 'exited while waiting');
        child.onerror = (err) => this.log(`warm spare: ${err.message}`);
        child.onmessage = (message) => this.log(`warm spare wrote before it was given a client: ${JSON.stringify(message).slice(0, 200)}`);
      },
      (err: Error) => this.lost(spare, `could not be started: ${err.message}`),
    );
    return spare;
  }

  private lost(spare: Spare, why: string): void {
    if (spare.taken || this.closed) return;
    const index = this.waiting.indexOf(spare);
    if (index >= 0) this.waiting.splice(index, 1);
    this.failures += 1;
    const delayMs = backoffDelay(this.failures);
    this.log(`warm spare ${why}; another in ${delayMs} ms`);
    clearTimeout(this.refill);
    this.refill = setTimeout(() => {
      this.refill = undefined;
      this.fill();
    }, delayMs);
    this.refill.unref();
  }
}
