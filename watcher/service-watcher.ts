import type { Dirent } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../core/log.ts';
import { isServiceName } from '../core/service-name.ts';
import { hashTree, isIgnoredPath } from '../core/tree-hash.ts';

export interface ServiceChange {
  service: string;
  /** hashTree() of the service folder after the change. */
  hash: string;
  /**
   * Relative to the service folder, `/`-separated, sorted, unique: files modified, added or
   * removed. The first time a service is seen (no known hash), every source file.
   */
  changedPaths: string[];
  /** ISO time at which the change was detected. */
  at: string;
}

type Callback<T> = (value: T) => void | Promise<void>;

export interface ServiceWatcherOptions {
  /** The services root: each direct subfolder is one service. */
  root: string;
  debounceMs: number;
  log: Logger;
  onChange: Callback<ServiceChange>;
  onServiceAdded?: Callback<string>;
  onServiceRemoved?: Callback<string>;
  /** Last hash already handled per service (from MongoDB): an unchanged service is not re-reported at start. */
  knownHashes?: ReadonlyMap<string, string>;
  /** Waits between attempts to deliver a change onChange rejected: doubling from firstMs, never above maxMs. */
  retry?: { firstMs: number; maxMs: number };
}

/** Temporal restarts in seconds; a developer waiting for a validation should not wait much longer than that. */
const DEFAULT_RETRY = { firstMs: 500, maxMs: 15_000 };

/** Capped exponential backoff: the wait before the next attempt after `failures` failed ones in a row. */
export function retryDelayMs(failures: number, { firstMs, maxMs } = DEFAULT_RETRY): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, failures - 1));
}

interface Undelivered {
  change: ServiceChange;
  /** Failed attempts in a row, across newer changes that superseded older ones: the outage goes on. */
  failures: number;
}

interface ServiceState {
  name: string;
  dir: string;
  timer: NodeJS.Timeout | undefined;
  /** Paths reported by chokidar since the last check. */
  pending: Set<string>;
  hash: string | undefined;
  files: Set<string>;
  /** Hashing and every callback of one service run in order on this chain, so signals never overtake each other. */
  chain: Promise<void>;
  gone: boolean;
  /** The newest change onChange rejected; retried (timer) until delivered, superseded or closed. */
  undelivered: Undelivered | undefined;
}

const FILE_EVENTS = new Set(['add', 'change', 'unlink']);

/**
 * Watches a services root and reports debounced, content-hashed changes per service.
 * Callbacks for one service are serialised; close() waits for running ones and no callback follows it.
 */
export class ServiceWatcher {
  readonly #opts: ServiceWatcherOptions;
  readonly #root: string;
  readonly #services = new Map<string, ServiceState>();
  readonly #warned = new Set<string>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #ready: Promise<void>;
  #watcher: FSWatcher | undefined;
  #starting = true;
  #closed = false;
  #abortStart: (() => void) | undefined;

  constructor(opts: ServiceWatcherOptions) {
    this.#opts = opts;
    this.#root = path.resolve(opts.root);
    this.#ready = this.#start();
    // A caller that never awaits ready() must not crash the process with an unhandled rejection.
    this.#ready.catch((err: unknown) => opts.log.error({ err, root: this.#root }, 'service watcher failed to start'));
  }

  /** Resolves once existing service folders are scanned and their initial changes reported. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Paths of a service whose change is not delivered yet (sorted): seen since its last check while
   * the debounce runs, or of a change onChange rejected that is being retried; [] when nothing
   * waits. Lets a caller act while a change is pending instead of guessing how long the file events
   * take to arrive.
   */
  pending(service: string): string[] {
    const state = this.#services.get(service);
    if (!state || (!state.timer && !state.undelivered)) return [];
    return [...new Set([...state.pending, ...(state.undelivered?.change.changedPaths ?? [])])].sort();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abortStart?.();
    for (const state of this.#services.values()) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
    await this.#watcher?.close();
    await this.#ready.catch(() => undefined);
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
    for (const state of this.#services.values()) {
      // Not lost: the delivered hash (knownHashes) differs from the folder, so the next start reports it.
      if (state.undelivered) this.#opts.log.warn({ service: state.name, hash: state.undelivered.change.hash }, 'watcher closed with a change still undelivered');
    }
  }

  async #start(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
    if (this.#closed) return;
    const watcher = watch(this.#root, {
      ignoreInitial: true,
      // Not only filtered: ignored folders (node_modules above all) are never descended into.
      ignored: (p: string) => this.#isIgnored(p),
    });
    this.#watcher = watcher;
    watcher.on('all', (event, p) => this.#onEvent(event, p));
    watcher.on('error', (err) => this.#opts.log.warn({ err, root: this.#root }, 'file watcher error'));
    await new Promise<void>((resolve) => {
      this.#abortStart = resolve;
      watcher.once('ready', resolve);
    });
    // The scan runs after chokidar is ready, so a folder created in between is seen by one or the other.
    const initial: Promise<void>[] = [];
    for (const entry of await readdir(this.#root, { withFileTypes: true })) {
      if (this.#closed) return;
      if (!(await this.#isDirectory(entry))) continue;
      const state = this.#track(entry.name);
      if (state) initial.push(this.#enqueue(state, () => this.#check(state)));
    }
    await Promise.all(initial);
    this.#starting = false;
  }

  async #isDirectory(entry: Dirent): Promise<boolean> {
    if (entry.isDirectory()) return true;
    if (!entry.isSymbolicLink()) return false;
    return stat(path.join(this.#root, entry.name)).then((s) => s.isDirectory(), () => false);
  }

  /** Splits an absolute path into its service folder name and the path inside it. */
  #split(abs: string): { name: string; rest: string[] } | undefined {
    const rel = path.relative(this.#root, abs);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    const [name = '', ...rest] = rel.split(path.sep);
    return { name, rest };
  }

  #isIgnored(abs: string): boolean {
    const parts = this.#split(abs);
    if (!parts || parts.rest.length === 0) return false;
    return !isServiceName(parts.name) || isIgnoredPath(parts.rest.join('/'));
  }

  #onEvent(event: string, abs: string): void {
    if (this.#closed) return;
    const parts = this.#split(abs);
    if (!parts) return;
    const { name, rest } = parts;
    if (rest.length === 0) {
      if (event === 'addDir') {
        const state = this.#track(name);
        if (state) this.#schedule(state);
      } else if (event === 'unlinkDir') {
        this.#untrack(name);
      }
      return;
    }
    // Services are tracked only from their folder's own events and the scan: chokidar reports a
    // removed folder's files after the folder itself, and those must not bring the service back.
    const state = this.#services.get(name);
    if (!state) return;
    const rel = rest.join('/');
    if (isIgnoredPath(rel)) return;
    if (FILE_EVENTS.has(event)) state.pending.add(rel);
    this.#schedule(state);
  }

  #track(name: string): ServiceState | undefined {
    const existing = this.#services.get(name);
    if (existing) return existing;
    if (!isServiceName(name)) {
      if (!this.#warned.has(name)) {
        this.#warned.add(name);
        // Hidden folders (.git, .DS_Store…) are expected beside services; anything else is probably a typo.
        const level = name.startsWith('.') ? 'debug' : 'warn';
        this.#opts.log[level](
          { folder: name, root: this.#root },
          'folder skipped: not a valid service name (lower-case letters, digits and dashes)',
        );
      }
      return undefined;
    }
    const state: ServiceState = {
      name,
      dir: path.join(this.#root, name),
      timer: undefined,
      pending: new Set(),
      // Known hashes describe what existed when mcpship last ran; a folder created later is new.
      hash: this.#starting ? this.#opts.knownHashes?.get(name) : undefined,
      files: new Set(),
      chain: Promise.resolve(),
      gone: false,
      undelivered: undefined,
    };
    this.#services.set(name, state);
    this.#opts.log.info({ service: name }, 'service found');
    this.#enqueue(state, () => this.#opts.onServiceAdded?.(name));
    return state;
  }

  #untrack(name: string): void {
    this.#warned.delete(name);
    const state = this.#services.get(name);
    if (!state) return;
    this.#services.delete(name);
    state.gone = true;
    clearTimeout(state.timer);
    state.timer = undefined;
    state.undelivered = undefined;
    this.#opts.log.info({ service: name }, 'service removed');
    this.#enqueue(state, () => this.#opts.onServiceRemoved?.(name));
  }

  /** A save (re)starts the debounce; it also replaces a waiting retry, whose check it will do. */
  #schedule(state: ServiceState, delayMs = this.#opts.debounceMs): void {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void this.#enqueue(state, () => this.#check(state));
    }, delayMs);
  }

  /**
   * The retry is a check like any other, so it delivers the newest content of the folder; a save
   * while it waits supersedes it through the debounce, which also keeps a running debounce here.
   */
  #retryLater(state: ServiceState): void {
    if (!state.undelivered || state.timer || state.gone || this.#closed) return;
    this.#schedule(state, retryDelayMs(state.undelivered.failures, this.#opts.retry));
  }

  #enqueue(state: ServiceState, task: () => unknown): Promise<void> {
    const run = state.chain.then(async () => {
      if (this.#closed) return;
      try {
        await task();
      } catch (err) {
        this.#opts.log.error({ err, service: state.name }, 'service watcher callback failed');
      }
    });
    state.chain = run;
    this.#tasks.add(run);
    void run.finally(() => this.#tasks.delete(run));
    return run;
  }

  /** Hashes the service and reports a change when the content differs from the last known hash. */
  async #check(state: ServiceState): Promise<void> {
    if (state.gone) return;
    const paths = state.pending;
    state.pending = new Set();
    let tree: Awaited<ReturnType<typeof hashTree>>;
    try {
      tree = await hashTree(state.dir);
    } catch (err) {
      // Usually the folder (or part of it) vanished mid-hash; the removal's own event follows.
      for (const p of paths) state.pending.add(p);
      this.#opts.log.warn({ err, service: state.name }, 'service folder could not be hashed');
      this.#retryLater(state);
      return;
    }
    if (state.gone || this.#closed) return;
    const previous = state.files;
    const current = new Set(tree.files);
    state.files = current;
    const undelivered = state.undelivered;
    if (tree.hash === state.hash) {
      // Also ends a retry: the folder is back to what was delivered last, so nothing is missing.
      state.undelivered = undefined;
      this.#opts.log.debug({ service: state.name, hash: tree.hash }, 'content unchanged');
      return;
    }
    if (current.size === 0) {
      // A just-created folder has nothing to validate yet; its first file triggers the change.
      state.undelivered = undefined;
      this.#opts.log.debug({ service: state.name }, 'service folder has no source files');
      return;
    }
    // Paths from events count only if they are (or were) source files: transient editor files drop
    // out. Added and removed files come from the tree itself, so a missed event still shows up.
    const changed = new Set<string>();
    for (const p of paths) if (current.has(p) || previous.has(p)) changed.add(p);
    for (const f of current) if (!previous.has(f)) changed.add(f);
    for (const f of previous) if (!current.has(f)) changed.add(f);
    const before = state.hash;
    state.hash = tree.hash;
    const retry = undelivered?.change.hash === tree.hash;
    const change: ServiceChange = {
      service: state.name,
      hash: tree.hash,
      changedPaths: [...changed].sort(),
      // A retry of the same content keeps the time of the save, not of the attempt.
      at: retry ? undelivered.change.at : new Date().toISOString(),
    };
    if (!retry) this.#opts.log.info({ service: state.name, hash: tree.hash, changedPaths: change.changedPaths }, 'service changed');
    try {
      await this.#opts.onChange(change);
    } catch (err) {
      // Undelivered: forget the hash so that the retry (or a save back to this content) reports it again.
      state.hash = before;
      state.files = previous;
      for (const p of paths) state.pending.add(p);
      const failures = (undelivered?.failures ?? 0) + 1;
      state.undelivered = { change, failures };
      // Once per outage: every attempt fails the same way until the receiver is back.
      if (failures === 1) this.#opts.log.error({ err, service: state.name, hash: tree.hash }, 'change could not be delivered; retrying until it is');
      else this.#opts.log.debug({ err, service: state.name, hash: tree.hash, failures }, 'change still undelivered');
      this.#retryLater(state);
      return;
    }
    state.undelivered = undefined;
    if (undelivered) this.#opts.log.info({ service: state.name, hash: tree.hash, failedAttempts: undelivered.failures }, 'change delivered after retrying');
  }
}

export function watchServices(opts: ServiceWatcherOptions): ServiceWatcher {
  return new ServiceWatcher(opts);
}
