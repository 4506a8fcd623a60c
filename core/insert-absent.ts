import { MongoBulkWriteError, MongoServerError, type Collection, type Document, type OptionalUnlessRequiredId } from 'mongodb';

/** The server's code for a write refused because its unique key is taken. */
export const DUPLICATE_KEY = 11000;

export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

/**
 * Inserts the documents whose unique keys are not taken; the others are left as they are. For
 * writes that may be redone (a retried activity, a second process): an upsert would do the same,
 * but FerretDB 1.24 looks an upsert's filter up without its index.
 */
export async function insertAbsent<T extends Document>(collection: Collection<T>, docs: OptionalUnlessRequiredId<T>[]): Promise<void> {
  try {
    await collection.insertMany(docs, { ordered: false });
  } catch (err) {
    const duplicatesOnly = err instanceof MongoBulkWriteError && (Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]).every((e) => e.code === DUPLICATE_KEY);
    if (!duplicatesOnly) throw err;
  }
}

/**
 * Inserts `doc` unless its unique key is taken, and says whether it did: the one writer among
 * several that got there first (FerretDB 1.24 may apply two racing conditional updates both, but it
 * keeps unique keys unique), or a new document rather than one to update.
 */
export async function insertOneAbsent<T extends Document>(collection: Collection<T>, doc: OptionalUnlessRequiredId<T>): Promise<boolean> {
  try {
    await collection.insertOne(doc);
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}
