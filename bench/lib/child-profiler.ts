/**
 * A V8 CPU profile of a measured child process over the measured calls only (not its start-up,
 * module compilation or idle time between runs): the parent sends `profile-start` when the load
 * generator's calls start and `profile-stop:<file>` when they end. Profiles of several runs go to
 * files of their own; bench/lib/profile-summary.ts reads them.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

let session: Session | undefined;

/** Handles a profiler message; false for any other message. */
export function profilerMessage(message: string): boolean {
  if (message === 'profile-start') {
    void (async () => {
      session ??= new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    })();
    return true;
  }
  if (message.startsWith('profile-stop:')) {
    const file = message.slice('profile-stop:'.length);
    void (async () => {
      if (!session) return;
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      await writeFile(file, JSON.stringify(profile));
    })();
    return true;
  }
  return false;
}
