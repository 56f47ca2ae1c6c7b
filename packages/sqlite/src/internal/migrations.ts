/**
 * The database schema as an ordered list of migrations, and the code that brings a database up to
 * date. Each applied migration is recorded as a row of `creditlock_schema_version`.
 *
 * @internal
 */
import type Database from "better-sqlite3"

/** One schema step: its version (1, 2, …, without gaps) and the SQL that applies it. */
interface Migration {
  readonly version: number
  readonly sql: string
}

/**
 * Every table name starts with `creditlock_`, so the schema can live in a database the caller also
 * uses for its own tables.
 */
const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    sql: `
      CREATE TABLE creditlock_holders (
        holder_key TEXT NOT NULL PRIMARY KEY,
        customer_id TEXT NOT NULL,
        holder_type TEXT NOT NULL,
        holder_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        document TEXT NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE creditlock_journal (
        holder_key TEXT NOT NULL REFERENCES creditlock_holders (holder_key),
        seq INTEGER NOT NULL,
        id TEXT NOT NULL UNIQUE,
        reference TEXT,
        entry TEXT NOT NULL,
        PRIMARY KEY (holder_key, seq)
      ) WITHOUT ROWID;

      CREATE INDEX creditlock_journal_reference
        ON creditlock_journal (holder_key, reference) WHERE reference IS NOT NULL;

      CREATE TABLE creditlock_index (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        holder_key TEXT NOT NULL REFERENCES creditlock_holders (holder_key),
        PRIMARY KEY (kind, value, holder_key)
      ) WITHOUT ROWID;
    `,
  },
  {
    // Balance-group aliases become claims: one holder per alias, for good (no implicit alias any
    // more). A v1 alias indexed for exactly one holder becomes that holder's claim; an alias two
    // or more holders shared is ambiguous and claimed by none of them. A document naming an alias
    // its holder does not hold now names none (JSON null), so document and claims agree.
    version: 2,
    sql: `
      CREATE TABLE creditlock_aliases (
        alias TEXT NOT NULL PRIMARY KEY,
        holder_key TEXT NOT NULL REFERENCES creditlock_holders (holder_key)
      ) WITHOUT ROWID;

      INSERT INTO creditlock_aliases (alias, holder_key)
        SELECT value, min(holder_key) FROM creditlock_index
        WHERE kind = 'balanceGroup'
        GROUP BY value
        HAVING count(DISTINCT holder_key) = 1;

      DELETE FROM creditlock_index WHERE kind = 'balanceGroup';

      UPDATE creditlock_holders
        SET document = json_set(document, '$.balanceGroupId', NULL)
        WHERE json_extract(document, '$.balanceGroupId') IS NOT NULL
          AND NOT EXISTS (
            SELECT 1 FROM creditlock_aliases AS a
            WHERE a.holder_key = creditlock_holders.holder_key
              AND a.alias = json_extract(creditlock_holders.document, '$.balanceGroupId')
          );
    `,
  },
]

/** The schema version this build of the adapter writes. */
export const latestVersion: number = migrations.reduce((max, m) => Math.max(max, m.version), 0)

/** The table that records applied migrations. */
export const versionTable = "creditlock_schema_version"

/** A database this build cannot use; the message names both versions and is safe to show. */
export class SchemaVersionError extends Error {
  override readonly name = "SchemaVersionError"
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `the database has creditlock schema version ${found}, written by a newer @creditlock/sqlite; ` +
        `this version supports schema versions up to ${supported}. Upgrade @creditlock/sqlite; ` +
        "the database was left untouched",
    )
  }
}

/** The highest schema version recorded in the database (0 for a database without the schema). Reads only. */
export const currentVersion = (db: Database.Database): number => {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").pluck().get(versionTable)
  if (table === undefined) return 0
  const version = db.prepare(`SELECT max(version) FROM ${versionTable}`).pluck().safeIntegers(false).get()
  return typeof version === "number" ? version : 0
}

/** Throws {@link SchemaVersionError} when the database was written by a newer schema. */
export const checkNotNewer = (version: number): void => {
  if (version > latestVersion) throw new SchemaVersionError(version, latestVersion)
}

/**
 * Applies the missing migrations in one `BEGIN IMMEDIATE` transaction, so that processes opening
 * the same file at once serialise here and each migration runs exactly once. The version is read
 * again inside the transaction: another process may have migrated since the caller looked. Throws
 * (rolling everything back) on failure or on a newer schema.
 */
export const migrate = (db: Database.Database, now: number): void => {
  db.transaction(() => {
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${versionTable} (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)`,
    )
    const version = currentVersion(db)
    checkNotNewer(version)
    const record = db.prepare(`INSERT INTO ${versionTable} (version, applied_at) VALUES (?, ?)`)
    for (const migration of migrations) {
      if (migration.version <= version) continue
      db.exec(migration.sql)
      record.run(migration.version, now)
    }
  }).immediate()
}
