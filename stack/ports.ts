import net from 'node:net';

export class PortInUseError extends Error {
  override name = 'PortInUseError';
}

/** Resolves when nothing listens on host:port, else rejects with a message naming the setting to change. */
export function assertPortFree(host: string, port: number, what: string, setting: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(`port ${port} for ${what} is already in use on ${host}; stop what holds it or set ${setting} to another port`)
          : err,
      );
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** A port the OS says is free right now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
