/**
 * The compatibility layer's shared shapes (issue 9): transforms and their chains, message
 * differences with JSON-pointer paths, round-trip results, schema changes and the compatibility
 * matrix's cells. Pure types, imported by the transform engine, the round-trip test, schema diff,
 * differential replay and the matrix store. The MongoDB documents (matrix cells) are in
 * core/documents.ts and built from these.
 */

/** A JSON value as parsed from a captured message. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One parsed JSON-RPC message (request, response, error or notification). */
export type JsonRpcMessage = Record<string, unknown>;

/** A tool as `tools/list` describes it (only the fields compatibility looks at are typed). */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: {
    readOnlyHint?: boolean;
    destructiveHint?: boolean;
    idempotentHint?: boolean;
    openWorldHint?: boolean;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** What a transform function knows about the message it reshapes. */
export interface TransformContext {
  service: string;
  /** This transform's `from` and `to` versions (one step of a chain). */
  from: string;
  to: string;
  /** The JSON-RPC method of the request (for a response: of the request it answers). */
  method?: string;
  /** `params.name` of a `tools/call` in this step's shape (for a response: of the request it answers). */
  toolName?: string;
}

/** A response's context: the request it answers, as the version serving the client received it. */
export interface ResponseContext extends TransformContext {
  request?: JsonRpcMessage;
}

/** A pure message reshaping: gets a copy it may mutate, returns the message (the same object or a new one). */
export type MessageTransformFn<C extends TransformContext = TransformContext> = (msg: JsonRpcMessage, ctx: C) => JsonRpcMessage;

/**
 * One version change of a service, declared in the service folder as `transforms/<name>.ts`
 * (default export). Handlers only know the newest shape: requests are migrated forward (from → to)
 * and what the server sends is migrated backward (to → from). The `*Inverse` functions undo the
 * main direction; they are optional and only used by the round-trip test (historical message →
 * forward → inverse → compare), so a transform without them is reported as unchecked, not failed.
 */
export interface TransformDefinition {
  /** The older version a client may be built against, and the next newer version. */
  from: string;
  to: string;
  description: string;
  /** Behaviour changes rather than shape changes: replay treats these calls as not comparable. */
  sideEffects?: boolean;
  /** A client→server request (any method), in `from`'s shape → `to`'s shape. */
  requestForward?: MessageTransformFn;
  /** Undoes requestForward (round-trip test only). */
  requestInverse?: MessageTransformFn;
  /** A server→client response or error, in `to`'s shape → `from`'s shape. */
  responseBackward?: MessageTransformFn<ResponseContext>;
  /** Undoes responseBackward (round-trip test only). */
  responseInverse?: MessageTransformFn<ResponseContext>;
  /** The tools of a `tools/list` result, `to` → `from` (an old client sees the tool shapes it knows). */
  toolsListBackward?: (tools: ToolDefinition[], ctx: TransformContext) => ToolDefinition[];
  /** A server→client notification, `to` → `from`. */
  notificationBackward?: MessageTransformFn;
  /** Undoes notificationBackward (round-trip test only). */
  notificationInverse?: MessageTransformFn;
}

/** A transform as loaded from its file. */
export interface LoadedTransform extends TransformDefinition {
  /** The file's name relative to the service folder, e.g. `transforms/1.0-to-2.0.ts`: the transform's id. */
  id: string;
}

/** The transforms between two versions, oldest first: steps[0].from = from, steps[n-1].to = to. */
export interface TransformChain {
  service: string;
  from: string;
  to: string;
  steps: LoadedTransform[];
}

/** What a chain applied to a message (kept in the capture: MessageDoc.transforms). */
export interface AppliedChain {
  /** Transform ids in the order they ran. */
  ids: string[];
  direction: 'forward' | 'backward';
  durationMs: number;
}

/** The kinds of difference between two JSON values at one path. */
export type DifferenceKind = 'field_dropped' | 'field_added' | 'type_changed' | 'value_changed';

/** One difference; `path` is a JSON pointer (RFC 6901) into the original (`before`) message. */
export interface Difference {
  kind: DifferenceKind;
  path: string;
  before?: Json;
  after?: Json;
}

/** Which part of a transform ran (or failed). */
export type TransformPhase = 'requestForward' | 'requestInverse' | 'responseBackward' | 'responseInverse' | 'toolsListBackward' | 'notificationBackward' | 'notificationInverse';

/** A transform that threw. */
export interface TransformFailure {
  transformId: string;
  phase: TransformPhase;
  message: string;
}

/**
 * One captured message through the round trip. exact: it came back equal; lossy: it came back
 * with `losses`; failed: a transform threw; unchecked: a step that changes this kind of message
 * declares no inverse.
 */
export interface RoundTripResult {
  messageId?: string;
  direction: 'client_to_server' | 'server_to_client';
  kind: 'request' | 'response' | 'notification' | 'error';
  method?: string;
  toolName?: string;
  outcome: 'exact' | 'lossy' | 'failed' | 'unchecked';
  losses: Difference[];
  failure?: TransformFailure;
}

/** A path and how often it appeared in failures (the matrix's and reports' "top failing paths"). */
export interface PathCount {
  path: string;
  kind: DifferenceKind | 'transform_failed' | 'schema';
  count: number;
}

/** The round trip of a chain over a sample of captured messages. */
export interface RoundTripReport {
  service: string;
  from: string;
  to: string;
  chain: string[];
  total: number;
  exact: number;
  lossy: number;
  failed: number;
  unchecked: number;
  topPaths: PathCount[];
  /** A few non-exact results, for the report. */
  samples: RoundTripResult[];
}

export type SchemaChangeKind =
  | 'tool_removed'
  | 'tool_renamed'
  | 'tool_added'
  | 'required_input_added'
  | 'optional_input_added'
  | 'input_removed'
  | 'input_type_narrowed'
  | 'input_type_widened'
  | 'input_type_changed'
  | 'input_became_required'
  | 'output_schema_changed'
  | 'annotations_changed';

/** breaking: recorded calls would be rejected or misread; risky: may break some clients; additive: new things only. */
export type ChangeClass = 'breaking' | 'risky' | 'additive';

export interface SchemaChange {
  kind: SchemaChangeKind;
  class: ChangeClass;
  tool: string;
  /** For tool_renamed. */
  renamedTo?: string;
  /** JSON pointer into the tool's inputSchema / outputSchema, when the change is inside one. */
  path?: string;
  detail: string;
  /** Captured `tools/call`s of this tool, and how many of them the new version would reject. */
  usage: { calls: number; rejected: number };
}

export interface SchemaDiffReport {
  service: string;
  from: string;
  to: string;
  changes: SchemaChange[];
  /** The worst class among the changes; 'none' when the tools are the same. */
  class: ChangeClass | 'none';
  /** Captured `tools/call`s looked at, and how many of them the new version would reject. */
  capturedCalls: number;
  rejectedCalls: number;
}

/** A matrix column: clients by protocol revision and clientInfo, or one tool. */
export type CompatColumn =
  | { kind: 'client'; protocolRevision: string; clientName: string; clientVersion: string }
  | { kind: 'tool'; tool: string };

/** Who filled a cell: the round-trip test, the schema diff, or differential replay. */
export type CompatSource = 'round_trip' | 'schema' | 'replay';

/** The counts of a cell, one per outcome (a message is counted in `replayed` and in one of the others). */
export interface CompatCounts {
  replayed: number;
  equal: number;
  noise: number;
  differs: number;
  breaks: number;
  skipped: number;
}

/** A cell's verdict: the worst outcome with a count, or 'skipped' when nothing was compared. */
export type CompatStatus = 'equal' | 'noise' | 'differs' | 'breaks' | 'skipped';

export interface CompatCell {
  column: CompatColumn;
  source: CompatSource;
  counts: CompatCounts;
  status: CompatStatus;
  topPaths: PathCount[];
  /** The run that filled it (a replay workflow id, a validation's version). */
  runId?: string;
  updatedAt: Date;
}

/** One matrix row: a version's cells (the API's answer; stored one cell per document). */
export interface CompatRow {
  version: string;
  cells: CompatCell[];
}

export interface CompatMatrix {
  service: string;
  /** Newest version first. */
  rows: CompatRow[];
  /** Every column seen in any row, clients first. */
  columns: CompatColumn[];
}
