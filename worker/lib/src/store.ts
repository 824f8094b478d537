/**
 * An object's durable record in its SQLite storage: the state with its
 * version, and the replies of recent request ids. A change, its version and
 * its request id are written in one transaction.
 */
import type { Reply } from "./protocol";

/** How long and how many request ids an object remembers. */
export interface Retention {
  /** Request ids kept per object; older ones beyond this count are forgotten. */
  maxEntries: number;
  /** Age after which a request id is forgotten, in milliseconds. */
  maxAgeMs: number;
}

export const DEFAULT_RETENTION: Retention = { maxEntries: 10_000, maxAgeMs: 3_600_000 };

/** The stored state: `stateJson` is null when the object has no stored state. */
export interface Stored {
  version: number;
  stateJson: string | null;
}

/** A reply to remember under a request id. */
export interface Remembered {
  requestId: string;
  reply: Reply;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS durable_state (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
  version INTEGER NOT NULL,
  state TEXT
);
CREATE TABLE IF NOT EXISTS durable_requests (
  seq INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL UNIQUE,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  stored_at INTEGER NOT NULL
);
`;

type StateRow = { version: number; state: string | null };
type ReplyRow = { status: number; body: string };

export class ObjectStore {
  constructor(
    private readonly storage: DurableObjectStorage,
    readonly retention: Retention = DEFAULT_RETENTION,
    private readonly now: () => number = Date.now,
  ) {
    storage.sql.exec(SCHEMA);
  }

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  /** The stored state and version (version 0, no state, if never written). */
  read(): Stored {
    const rows = this.sql.exec<StateRow>("SELECT version, state FROM durable_state WHERE singleton = 0").toArray();
    const row = rows[0];
    return row === undefined ? { version: 0, stateJson: null } : { version: row.version, stateJson: row.state };
  }

  /** The reply remembered for `requestId`, if it is recent enough. */
  recall(requestId: string): Reply | null {
    const cutoff = this.now() - this.retention.maxAgeMs;
    const rows = this.sql
      .exec<ReplyRow>("SELECT status, body FROM durable_requests WHERE request_id = ? AND stored_at > ?", requestId, cutoff)
      .toArray();
    const row = rows[0];
    return row === undefined ? null : { status: row.status, body: row.body };
  }

  /** Writes a new state and version, and the reply of its request id, atomically. */
  commit(next: Stored, remembered: Remembered | null): void {
    this.storage.transactionSync(() => {
      this.sql.exec(
        "INSERT INTO durable_state (singleton, version, state) VALUES (0, ?, ?) " +
          "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, state = excluded.state",
        next.version,
        next.stateJson,
      );
      if (remembered !== null) this.remember(remembered);
    });
  }

  private remember({ requestId, reply }: Remembered): void {
    const row = this.sql
      .exec<{ seq: number }>(
        "INSERT OR REPLACE INTO durable_requests (request_id, status, body, stored_at) VALUES (?, ?, ?, ?) RETURNING seq",
        requestId,
        reply.status,
        reply.body,
        this.now(),
      )
      .one();
    // Keep only the newest `maxEntries`: sequence numbers only grow.
    this.sql.exec("DELETE FROM durable_requests WHERE seq <= ?", row.seq - this.retention.maxEntries);
  }

  /** Forgets expired request ids; returns when the oldest remaining one expires, or null. */
  pruneExpired(): number | null {
    const cutoff = this.now() - this.retention.maxAgeMs;
    this.sql.exec("DELETE FROM durable_requests WHERE stored_at <= ?", cutoff);
    const oldest = this.sql.exec<{ oldest: number | null }>("SELECT min(stored_at) AS oldest FROM durable_requests").one();
    return oldest.oldest === null ? null : oldest.oldest + this.retention.maxAgeMs;
  }

  /** How many request ids are remembered (for tests and diagnostics). */
  rememberedCount(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM durable_requests").one().n;
  }
}
