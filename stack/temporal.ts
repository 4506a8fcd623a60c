import path from 'node:path';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_NAMES } from '../core/search-attributes.ts';
import { stackBinary } from './binaries.ts';
import { ManagedProcess } from './managed-process.ts';

export interface TemporalDevOptions {
  stateDir: string;
  port: number;
  uiPort: number;
  namespace: string;
  /** More namespaces created at start (the test runner gives each test file its own). */
  extraNamespaces?: readonly string[];
}

/** `temporal server start-dev` with its state in <stateDir>/temporal.db, so a second start reuses it. */
export function launchTemporalDev(opts: TemporalDevOptions): ManagedProcess {
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(opts.port),
    '--ui-port', String(opts.uiPort),
    '--db-filename', path.join(opts.stateDir, 'temporal.db'),
    ...[opts.namespace, ...(opts.extraNamespaces ?? [])].flatMap((ns) => ['--namespace', ns]),
    '--log-format', 'json',
    '--log-level', 'warn',
  ];
  return new ManagedProcess('temporal', stackBinary('temporal'), args, path.join(opts.stateDir, 'logs'));
}

/** True once the namespace answers through a real client connection. */
export async function temporalReady(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}

/** Registers mcpship's Keyword search attributes on the namespace; already present ones are left alone. */
export async function ensureSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !(name in (existing.customAttributes ?? {})));
    if (missing.length === 0) return;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
  } finally {
    await connection.close();
  }
}
