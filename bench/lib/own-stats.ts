/**
 * What a measured child process (bench/lib/gateway-process.ts, bench/lib/plain-hop.ts) reports
 * about itself over IPC, so that its CPU is read exactly around the measured calls.
 */
export interface GatewayStats {
  /** process.cpuUsage() user + system, in ms, since the process started. */
  cpuMs: number;
  rssBytes: number;
  heapUsedBytes: number;
}

export function ownStats(): GatewayStats {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return { cpuMs: (cpu.user + cpu.system) / 1000, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
}
