/**
 * The bridge's shared processes for stateless (2026-07-28) clients: at most `size` long-lived
 * stdio servers, each carrying many clients' requests (runner/stdio-mux.ts). A request goes to
 * the least busy process; while every process is busy and the pool is not full, one more is added
 * from the warm spares, without making the request wait for it. A process that exits is dropped;
 * the next request that finds the pool short adds another.
 */
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { SharedChild } from './stdio-mux.ts';

export class StatelessPool {
  private readonly children: SharedChild[] = [];
  private growing: Promise<SharedChild> | undefined;
  private closed = false;

  constructor(
    private readonly take: () => Promise<StdioClientTransport>,
    private readonly size: number,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * The process for the next request. One that asks for log messages prefers a process where no
   * other request did, since log messages on stdio cannot be told apart.
   */
  async acquire(wantsLogs: boolean): Promise<SharedChild> {
    if (this.closed) throw new Error('the bridge is shutting down');
    const quiet = wantsLogs ? this.children.filter((c) => c.loggingRequests === 0) : this.children;
    const candidates = quiet.length ? quiet : this.children;
    const best = candidates.reduce<SharedChild | undefined>((min, c) => (min === undefined || c.load < min.load ? c : min), undefined);
    const full = this.children.length + (this.growing ? 1 : 0) >= this.size;
    if (!full && (best === undefined || best.load > 0 || (wantsLogs && quiet.length === 0))) this.grow();
    return best ?? this.growing!;
  }

  pids(): number[] {
    return this.children.flatMap((c) => (c.pid ? [c.pid] : []));
  }

  async close(): Promise<void> {
    this.closed = true;
    const growing = this.growing?.catch(() => undefined);
    await Promise.all([...this.children.splice(0).map((c) => c.close()), growing?.then((c) => c?.close())]);
  }

  private grow(): void {
    if (this.growing) return;
    const growing = this.take().then((transport) => {
      const child = new SharedChild(transport, transport.pid, this.log, (gone) => {
        const index = this.children.indexOf(gone);
        if (index >= 0) this.children.splice(index, 1);
      });
      if (this.closed) void child.close();
      else this.children.push(child);
      return child;
    });
    this.growing = growing;
    void growing.then(
      () => (this.growing = undefined),
      (err: Error) => {
        this.growing = undefined;
        this.log(`cannot add a shared stdio server: ${err.message}`);
      },
    );
  }
}
