/**
 * The client connection to Temporal, with a close that cannot crash the process. The SDK retries a
 * failed call (UNAVAILABLE and the like) from a timer; a retry that fires after the channel was shut
 * throws "Channel has been shut down" inside that timer — an uncaught exception. So the connection
 * notes when its last scheduled retry is due, stops scheduling new ones once closing, and shuts the
 * channel only after that moment: a call still retrying then ends with its error, to its caller.
 */
import { Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';

export interface TemporalConnection {
  connection: Connection;
  close(): Promise<void>;
}

export async function connectTemporal(address: string): Promise<TemporalConnection> {
  const defaults = defaultGrpcRetryOptions();
  let closing = false;
  let lastRetryDueAt = 0;
  const connection = await Connection.connect({
    address,
    interceptors: [
      makeGrpcRetryInterceptor({
        retryableDecider: (attempt, status) => !closing && defaults.retryableDecider(attempt, status),
        delayFunction: (attempt, status) => {
          const delay = defaults.delayFunction(attempt, status);
          lastRetryDueAt = Math.max(lastRetryDueAt, Date.now() + delay);
          return delay;
        },
      }),
    ],
  });
  return {
    connection,
    async close() {
      closing = true;
      const wait = lastRetryDueAt - Date.now();
      // A few milliseconds past the due time: the retry has then started its call on the open channel.
      if (wait > -50) await new Promise((r) => setTimeout(r, Math.max(0, wait) + 50));
      await connection.close();
    },
  };
}
