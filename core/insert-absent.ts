import { MongoBulkWriteError, type Collection, type Document, type OptionalUnlessRequiredId } from 'mongodb';

/**
 * Inserts the documents whose unique keys are not taken; the others are left as they are. For
 * writes that may be redone (a retried activity, a second process): an upsert would do the same,
 * but FerretDB 1.24 looks an upsert's filter up without its index.
 */
export async function insertAbsent<T extends Document>(collection: Collection<T>, docs: OptionalUnlessRequiredId<T>[]): Promise<void> {
  try {
    await collection.insertMany(docs, { ordered: false });
  } catch (err) {
    const duplicatesOnly = err instanceof MongoBulkWriteError && (Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]).every((e) => e.code === 11000);
    if (!duplicatesOnly) throw err;
  }
}
