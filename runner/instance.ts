/**
 * One instance slot of a pool, supervised for its whole life: launch, readiness, restart with
 * backoff when the process dies, and on stop: drain, terminate, report. Its InstanceDoc in MongoDB
 * is how everyone else (the gateway first) sees it, so every state change is written there.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventDoc, InstanceDoc, InstanceState } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import { freePort } from '../stack/ports.ts';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import type { Guard } from './guardian.ts';
import { loadLaunch, type Launch } from './launch.ts';
import { startRelay, type Relay } from './node-relay.ts';
import { describeExit, signalGroup, spawnGroup, terminateGroup, type GroupProcess } from './process-group.ts';
import { waitReady } from './readiness.ts';

export interface InstanceSettings {
  drainMs: number;
  readyTimeoutMs: number;
  /** Between SIGTERM to the process group and SIGKILL. */
  killGraceMs: number;
  probeIntervalMs: number;
  /** An instance that stayed ready this long starts its backoff afresh when it dies. */
  stableMs: number;
  backoff: BackoffPolicy;
  /** `<stateDir>/logs/instances` */
  logDir: string;
  /** The runner node the instances run on. */
  nodeId: string;
  /** When gateways reach this node from elsewhere: the advertised host, and where its relays listen. */
  expose?: { advertiseHost: string; bindHost: string };
}

export interface InstanceDeps {
  store: Store;
  events: EventStore;
  log: Logger;
  /** Told of every process group, to end them should the runner die without stopping them. */
  guard: Guard;
  settings: InstanceSettings;
}

/** Why one launch ended, when it ended without being asked to. */
interface Ended {
  kind: 'INSTANCE_EXITED' | 'INSTANCE_FAILED';
  reason: string;
  /** How long it had been ready, if it ever was. */
  readyMs?: number;
}

/** Qualified by node: a slot re-placed on another node gets a new id, and nodes never collide. */
export function instanceIdOf(service: string, version: string, nodeId: string, index: number): string {
  return `${service}-${version}-${nodeId}-${index}`;
}

export class Instance {
  readonly instanceId: string;
  private doc: InstanceDoc;
  private proc: GroupProcess | undefined;
  private readonly abort = new AbortController();
  private readonly stopSignalled: Promise<void>;
  private stopReason = '';
  private loop: Promise<void> | undefined;
  private writes: Promise<void> = Promise.resolve();
  private dirty = false;
  private readonly pendingEvents = new Set<Promise<unknown>>();
  private relay: Relay | undefined;

  constructor(
    private readonly deps: InstanceDeps,
    readonly service: string,
    readonly version: string,
    readonly index: number,
    /** The folder the next launch starts from (versions are immutable; it may move when archived). */
    public dir: string,
  ) {
    this.instanceId = instanceIdOf(service, version, deps.settings.nodeId, index);
    this.doc = { instanceId: this.instanceId, service, version, nodeId: deps.settings.nodeId, url: '', state: 'starting', restarts: 0, updatedAt: new Date() };
    this.stopSignalled = new Promise((resolve) => this.abort.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  get state(): InstanceState {
    return this.doc.state;
  }

  get stopRequested(): boolean {
    return this.abort.signal.aborted;
  }

  get logFile(): string {
    return path.join(this.deps.settings.logDir, `${this.instanceId}.log`);
  }

  start(): void {
    this.loop ??= this.supervise().catch((err: Error) => this.deps.log.error({ err, instanceId: this.instanceId }, 'instance supervisor failed'));
  }

  /** Drains (if it serves) and stops the instance; resolves once its processes are gone and reported. */
  stop(reason: string): Promise<void> {
    if (!this.abort.signal.aborted) {
      this.stopReason = reason;
      this.abort.abort();
    }
    this.start();
    return this.loop!;
  }

  /** Last resort at process exit: synchronous, no draining. */
  killNow(): void {
    if (this.proc) signalGroup(this.proc.pid, 'SIGKILL');
  }

  /** Writes the document again if the last write did not reach MongoDB. */
  flush(): Promise<void> {
    return this.dirty ? this.persist() : this.writes;
  }

  private async supervise(): Promise<void> {
    let failures = 0;
    while (!this.stopRequested) {
      const ended = await this.runOnce();
      if (!ended || this.stopRequested) break;
      if ((ended.readyMs ?? 0) >= this.deps.settings.stableMs) failures = 0;
      failures += 1;
      const delayMs = backoffDelay(failures, this.deps.settings.backoff);
      this.update({ state: 'failed', lastError: ended.reason });
      this.emit(ended.kind, 'failed', { reason: ended.reason, failures, restartInMs: delayMs });
      this.deps.log.warn({ instanceId: this.instanceId, reason: ended.reason, restartInMs: delayMs }, 'instance down');
      await sleep(delayMs, undefined, { signal: this.abort.signal }).catch(() => {});
      if (this.stopRequested) break;
      this.doc.restarts += 1;
      this.emit('INSTANCE_RESTARTED', 'running', { restarts: this.doc.restarts, afterMs: delayMs });
    }
    await this.finish();
  }

  /** One launch; undefined when it ended because a stop was asked for (finish() takes over). */
  private async runOnce(): Promise<Ended | undefined> {
    let launch: Launch;
    let proc: GroupProcess;
    try {
      launch = await loadLaunch(path.resolve(this.dir), await freePort());
      if (this.stopRequested) return undefined;
      proc = spawnGroup(launch, this.logFile);
    } catch (err) {
      return { kind: 'INSTANCE_FAILED', reason: `cannot start: ${(err as Error).message}` };
    }
    this.proc = proc;
    if (proc.pid > 1) this.deps.guard.add(proc.pid);
    // lastError stays: after a recovery it still says why the last restart happened.
    const { pid: _previous, ...rest } = this.doc;
    this.doc = { ...rest, ...(proc.pid > 0 ? { pid: proc.pid } : {}) };
    let url: string;
    try {
      url = await this.advertised(launch.url);
    } catch (err) {
      await terminateGroup(proc, this.deps.settings.killGraceMs);
      this.release(proc);
      return { kind: 'INSTANCE_FAILED', reason: `cannot expose at ${this.deps.settings.expose?.bindHost}: ${(err as Error).message}` };
    }
    this.update({ state: 'starting', url });

    const outcome = await waitReady(launch.url, {
      timeoutMs: this.deps.settings.readyTimeoutMs,
      intervalMs: this.deps.settings.probeIntervalMs,
      alive: () => proc.running(),
      signal: this.abort.signal,
    });
    if (this.stopRequested) return undefined;
    if (!outcome.ready) {
      const diedByItself = !proc.running();
      await terminateGroup(proc, this.deps.settings.killGraceMs);
      this.release(proc);
      const exit = describeExit(await proc.exited);
      return diedByItself
        ? { kind: 'INSTANCE_EXITED', reason: `${exit} before it was ready; see ${this.logFile}` }
        : { kind: 'INSTANCE_FAILED', reason: `${outcome.reason}; see ${this.logFile}` };
    }

    const readyAt = performance.now();
    this.update({ state: 'ready' });
    this.emit('INSTANCE_READY', 'ok', { url, pid: proc.pid, transport: launch.transport, tools: outcome.tools, restarts: this.doc.restarts });
    const exit = await Promise.race([proc.exited, this.stopSignalled.then(() => undefined)]);
    if (this.stopRequested || exit === undefined) return undefined;
    // The leader is gone; whatever else is in its group (a bridge's stdio servers) is orphaned.
    signalGroup(proc.pid, 'SIGKILL');
    this.release(proc);
    return { kind: 'INSTANCE_EXITED', reason: describeExit(exit), readyMs: performance.now() - readyAt };
  }

  /** The URL gateways use: the local one, or the node's relay in front of it at the advertised host. */
  private async advertised(localUrl: string): Promise<string> {
    const expose = this.deps.settings.expose;
    if (!expose) return localUrl;
    this.relay ??= await startRelay(expose.bindHost);
    const local = new URL(localUrl);
    this.relay.target = Number(local.port);
    const host = expose.advertiseHost.includes(':') ? `[${expose.advertiseHost}]` : expose.advertiseHost;
    return `http://${host}:${this.relay.port}${local.pathname}`;
  }

  private release(proc: GroupProcess): void {
    if (proc.pid > 1) this.deps.guard.remove(proc.pid);
    this.proc = undefined;
  }

  private async finish(): Promise<void> {
    const proc = this.proc;
    if (proc?.running()) {
      if (this.doc.state === 'ready') {
        // The gateway reads 'draining' and sends no new sessions; in-flight requests get drainMs.
        this.update({ state: 'draining' });
        this.emit('INSTANCE_DRAINING', 'running', { reason: this.stopReason, drainMs: this.deps.settings.drainMs });
        await Promise.race([sleep(this.deps.settings.drainMs), proc.exited]);
      }
      await terminateGroup(proc, this.deps.settings.killGraceMs);
    } else if (proc) {
      signalGroup(proc.pid, 'SIGKILL');
    }
    if (proc) this.release(proc);
    await this.relay?.close();
    this.relay = undefined;
    this.update({ state: 'stopped' });
    this.emit('INSTANCE_STOPPED', 'info', { reason: this.stopReason, restarts: this.doc.restarts });
    await this.writes;
    await Promise.allSettled([...this.pendingEvents]);
  }

  /**
   * Updates the document in memory and queues its write. Writes are queued, not awaited, so that
   * a slow or absent MongoDB never holds up a restart; each write sends the latest state, and a
   * failed one is retried by flush() on the runner's next pass.
   */
  private update(patch: Partial<Pick<InstanceDoc, 'state' | 'url' | 'lastError'>>): void {
    this.doc = { ...this.doc, ...patch, updatedAt: new Date() };
    void this.persist();
  }

  private persist(): Promise<void> {
    this.writes = this.writes.then(async () => {
      try {
        await this.deps.store.instances.replaceOne({ instanceId: this.instanceId }, { ...this.doc }, { upsert: true });
        this.dirty = false;
      } catch (err) {
        this.dirty = true;
        this.deps.log.warn({ err, instanceId: this.instanceId }, 'instance state not written; will retry');
      }
    });
    return this.writes;
  }

  private emit(kind: string, status: EventDoc['status'], details: Record<string, unknown>): void {
    const pending = this.deps.events
      .append({ service: this.service, version: this.version, kind, status, details: { instanceId: this.instanceId, ...details } })
      .catch((err: Error) => this.deps.log.warn({ err, kind, instanceId: this.instanceId }, 'event not recorded'));
    this.pendingEvents.add(pending);
    void pending.finally(() => this.pendingEvents.delete(pending));
  }
}
