/**
 * Transform chains: which transforms lead from the version a client speaks to the version that
 * serves it, and running them over messages. Versions with no transform between them speak the
 * same shapes, so a transform from 1.0.0 to 2.0.0 covers clients of 1.0.0 up to (not including)
 * 2.0.0. Each function gets its own copy of the message (one clone per chain run), so the caller's
 * message is never changed.
 */
import { performance } from 'node:perf_hooks';
import { compareVersions } from '../core/semver.ts';
import type { JsonRpcMessage, LoadedTransform, ResponseContext, ToolDefinition, TransformChain, TransformContext, TransformFailure, TransformPhase } from './types.ts';

export class ChainError extends Error {
  override name = 'ChainError';
}

/** A transform threw (or returned something that is not a message). */
export class TransformError extends Error {
  override name = 'TransformError';
  constructor(readonly failure: TransformFailure) {
    super(`transform ${failure.transformId} failed in ${failure.phase}: ${failure.message}`);
  }
}

/** Problems of a service's transforms as a set: bad versions, overlaps and gaps. Empty when fine. */
export function chainProblems(transforms: readonly LoadedTransform[], newest?: string): string[] {
  const problems: string[] = [];
  const sorted = [...transforms].sort((a, b) => compareVersions(a.from, b.from));
  for (const t of sorted) {
    if (compareVersions(t.from, t.to) >= 0) problems.push(`${t.id}: "from" (${t.from}) must be older than "to" (${t.to})`);
    if (newest !== undefined && compareVersions(t.to, newest) > 0) problems.push(`${t.id}: "to" (${t.to}) is newer than the service's version ${newest}`);
  }
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (compareVersions(next.from, prev.to) < 0) problems.push(`${prev.id} (${prev.from} → ${prev.to}) and ${next.id} (${next.from} → ${next.to}) overlap`);
    else if (compareVersions(next.from, prev.to) > 0) problems.push(`gap in the chain: nothing migrates ${prev.to} to ${next.from} (between ${prev.id} and ${next.id})`);
  }
  return problems;
}

/** The steps from the shapes of `from` to those of `to` (from older than or equal to to). */
export function buildChain(service: string, transforms: readonly LoadedTransform[], from: string, to: string): TransformChain {
  if (compareVersions(from, to) > 0) throw new ChainError(`${service}: version ${from} is newer than ${to}; transforms only migrate older clients forward`);
  const steps = transforms.filter((t) => compareVersions(t.to, from) > 0 && compareVersions(t.to, to) <= 0).sort((a, b) => compareVersions(a.to, b.to));
  const first = steps[0];
  if (first && compareVersions(first.from, from) > 0) {
    throw new ChainError(`${service}: no transform covers version ${from} (the oldest one, ${first.id}, starts at ${first.from})`);
  }
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]!.from !== steps[i - 1]!.to) throw new ChainError(`${service}: gap in the chain between ${steps[i - 1]!.id} (to ${steps[i - 1]!.to}) and ${steps[i]!.id} (from ${steps[i]!.from})`);
  }
  return { service, from, to, steps };
}

/** A deep copy of a parsed JSON value: several times faster than structuredClone on small messages. */
export function cloneJson<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const copy = cloneJson((value as Record<string, unknown>)[key]);
    // JSON.parse makes "__proto__" an own key; assigning it would set the prototype and lose the key.
    if (key === '__proto__') Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
    else out[key] = copy;
  }
  return out as T;
}

function isMessage(value: unknown): value is JsonRpcMessage {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The method and tool name of a request, as this step's context. */
export function requestFacts(msg: JsonRpcMessage): Pick<TransformContext, 'method' | 'toolName'> {
  const method = typeof msg.method === 'string' ? msg.method : undefined;
  const name = method === 'tools/call' ? (msg.params as { name?: unknown } | undefined)?.name : undefined;
  return { ...(method !== undefined ? { method } : {}), ...(typeof name === 'string' ? { toolName: name } : {}) };
}

/** Observes each function run (the gateway's per-transform counters). */
export type StepObserver = (transformId: string, phase: TransformPhase, ok: boolean, durationMs: number) => void;

function run<C extends TransformContext>(step: LoadedTransform, phase: TransformPhase, fn: (msg: JsonRpcMessage, ctx: C) => unknown, msg: JsonRpcMessage, ctx: C, observe?: StepObserver): JsonRpcMessage {
  const started = observe ? performance.now() : 0;
  let out: unknown;
  try {
    out = fn(msg, ctx);
  } catch (err) {
    observe?.(step.id, phase, false, performance.now() - started);
    throw new TransformError({ transformId: step.id, phase, message: err instanceof Error ? err.message : String(err) });
  }
  if (!isMessage(out)) {
    observe?.(step.id, phase, false, performance.now() - started);
    throw new TransformError({ transformId: step.id, phase, message: `returned ${out === null ? 'null' : typeof out}, not a message object` });
  }
  observe?.(step.id, phase, true, performance.now() - started);
  return out;
}

function context(chain: TransformChain, step: LoadedTransform, facts: Pick<TransformContext, 'method' | 'toolName'>): TransformContext {
  return { service: chain.service, from: step.from, to: step.to, ...facts };
}

/** A request migrated forward, and what each step saw (for answering its response backward). */
export interface ForwardedRequest {
  message: JsonRpcMessage;
  /** The method and tool name after each step (index i: in steps[i].to's shape). */
  trail: Pick<TransformContext, 'method' | 'toolName'>[];
  applied: string[];
}

/** A client request in the shapes of chain.from → in those of chain.to. */
export function forwardRequest(chain: TransformChain, original: JsonRpcMessage, observe?: StepObserver): ForwardedRequest {
  let msg = cloneJson(original);
  const trail: ForwardedRequest['trail'] = [];
  const applied: string[] = [];
  for (const step of chain.steps) {
    if (step.requestForward) {
      msg = run(step, 'requestForward', step.requestForward, msg, context(chain, step, requestFacts(msg)), observe);
      applied.push(step.id);
    }
    trail.push(requestFacts(msg));
  }
  return { message: msg, trail, applied };
}

/** The request a response answers, as forwardRequest left it (absent: a message with no request, e.g. an error for an unparsable one). */
export interface AnsweredRequest {
  message?: JsonRpcMessage;
  trail?: ForwardedRequest['trail'];
}

function responseContext(chain: TransformChain, index: number, request: AnsweredRequest): ResponseContext {
  const step = chain.steps[index]!;
  return { ...context(chain, step, request.trail?.[index] ?? {}), ...(request.message ? { request: request.message } : {}) };
}

/** A response (or error) in chain.to's shapes → chain.from's; a tools/list result's tools too. */
export function backwardResponse(chain: TransformChain, original: JsonRpcMessage, request: AnsweredRequest = {}, observe?: StepObserver): { message: JsonRpcMessage; applied: string[] } {
  let msg = cloneJson(original);
  const applied: string[] = [];
  const toolsList = request.trail ? request.trail.at(-1)?.method === 'tools/list' : request.message?.method === 'tools/list';
  for (let i = chain.steps.length - 1; i >= 0; i--) {
    const step = chain.steps[i]!;
    const ctx = responseContext(chain, i, request);
    let used = false;
    const result = msg.result as { tools?: unknown } | undefined;
    if (toolsList && step.toolsListBackward && result && Array.isArray(result.tools)) {
      const listed = result.tools as ToolDefinition[];
      const fn = step.toolsListBackward;
      const out = run(step, 'toolsListBackward', (m) => ({ tools: fn(m.tools as ToolDefinition[], ctx) }), { tools: listed }, ctx, observe);
      if (!Array.isArray(out.tools)) throw new TransformError({ transformId: step.id, phase: 'toolsListBackward', message: 'did not return an array of tools' });
      result.tools = out.tools;
      used = true;
    }
    if (step.responseBackward) {
      msg = run(step, 'responseBackward', step.responseBackward, msg, ctx, observe);
      used = true;
    }
    if (used) applied.push(step.id);
  }
  return { message: msg, applied };
}

/** A server notification in chain.to's shapes → chain.from's. */
export function backwardNotification(chain: TransformChain, original: JsonRpcMessage, observe?: StepObserver): { message: JsonRpcMessage; applied: string[] } {
  let msg = cloneJson(original);
  const applied: string[] = [];
  for (let i = chain.steps.length - 1; i >= 0; i--) {
    const step = chain.steps[i]!;
    if (!step.notificationBackward) continue;
    msg = run(step, 'notificationBackward', step.notificationBackward, msg, context(chain, step, requestFacts(msg)), observe);
    applied.push(step.id);
  }
  return { message: msg, applied };
}
