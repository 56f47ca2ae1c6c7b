/**
 * The database schema as an ordered list of migrations, and the code that brings a schema up to
 * date. Each applied migration is a row of `<schema>.schema_version`. Migrating runs in one
 * transaction holding a transaction-level advisory lock, so that processes starting at once on an
 * empty database serialise here and each migration runs exactly once.
 *
 * @internal
 */
import type { ClientBase } from "pg"

/** One schema step: its version (1, 2, …, without gaps) and the SQL that applies it in `schema`. */
interface Migration {
  readonly version: number
  readonly sql: (schema: string) => string
}

/**
 * Version 1: holders (one row each, the document as JSON text), the journal, the lookup index,
 * balance-group aliases, and `commit_holder`, the function one commit calls (one statement, one
 * round trip). Documents and entries are `text`, not `jsonb`: they are stored exactly as the engine
 * encoded them, and `jsonb` refuses the `\u0000` escape that JSON (and a journal reason) allows.
 */
const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    sql: (s) => `
      CREATE TABLE ${s}.holders (
        holder_key text NOT NULL PRIMARY KEY,
        customer_id text NOT NULL,
        holder_type text NOT NULL,
        holder_id text NOT NULL,
        revision bigint NOT NULL,
        document text NOT NULL
      );

      CREATE TABLE ${s}.journal (
        holder_key text NOT NULL REFERENCES ${s}.holders (holder_key),
        seq bigint NOT NULL,
        id text NOT NULL UNIQUE,
        reference text,
        entry text NOT NULL,
        PRIMARY KEY (holder_key, seq)
      );

      CREATE INDEX journal_reference ON ${s}.journal (holder_key, reference) WHERE reference IS NOT NULL;

      CREATE TABLE ${s}.index_keys (
        kind text NOT NULL,
        value text NOT NULL,
        holder_key text NOT NULL REFERENCES ${s}.holders (holder_key),
        PRIMARY KEY (kind, value, holder_key)
      );

      CREATE TABLE ${s}.aliases (
        alias text NOT NULL PRIMARY KEY,
        holder_key text NOT NULL REFERENCES ${s}.holders (holder_key)
      );

      -- One compare-and-set commit. Under READ COMMITTED: the UPDATE (or SELECT … FOR UPDATE)
      -- on the expected revision takes the holder's row lock; a concurrent commit of the same
      -- holder makes it wait, then re-checks the condition on the row that commit wrote, so
      -- only one of two commits at one revision matches. Creating races on the primary key:
      -- INSERT … ON CONFLICT DO NOTHING waits for a concurrent insert of the same key and then
      -- inserts nothing. Every check comes before a write that could not be undone here; a
      -- claim found taken undoes this call's own writes (its alias rows, a created holder) and
      -- answers 'claimed'. Any error aborts the statement, and with it everything it wrote.
      CREATE FUNCTION ${s}.commit_holder(
        p_key text, p_customer text, p_type text, p_holder text,
        p_expected bigint, p_document text,
        p_seqs bigint[], p_ids text[], p_refs text[], p_entries text[],
        p_kinds text[], p_values text[],
        p_claims text[]
      ) RETURNS TABLE (o_outcome text, o_revision bigint, o_alias text,
                       o_customer text, o_type text, o_holder text)
      LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        v_revision bigint;
        v_alias text;
        v_owner text;
        v_taken text[] := '{}';
      BEGIN
        IF p_expected IS NULL THEN
          INSERT INTO ${s}.holders (holder_key, customer_id, holder_type, holder_id, revision, document)
            VALUES (p_key, p_customer, p_type, p_holder, 1, p_document)
            ON CONFLICT (holder_key) DO NOTHING;
          IF NOT FOUND THEN
            RETURN QUERY SELECT 'conflict'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text;
            RETURN;
          END IF;
          v_revision := 1;
        ELSIF cardinality(p_claims) = 0 THEN
          UPDATE ${s}.holders AS h SET revision = p_expected + 1, document = p_document
            WHERE h.holder_key = p_key AND h.revision = p_expected;
          IF NOT FOUND THEN
            RETURN QUERY SELECT 'conflict'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text;
            RETURN;
          END IF;
          v_revision := p_expected + 1;
        ELSE
          PERFORM 1 FROM ${s}.holders AS h WHERE h.holder_key = p_key AND h.revision = p_expected FOR UPDATE;
          IF NOT FOUND THEN
            RETURN QUERY SELECT 'conflict'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text;
            RETURN;
          END IF;
          v_revision := p_expected + 1;
        END IF;

        FOREACH v_alias IN ARRAY p_claims LOOP
          INSERT INTO ${s}.aliases (alias, holder_key) VALUES (v_alias, p_key) ON CONFLICT (alias) DO NOTHING;
          IF FOUND THEN
            v_taken := v_taken || v_alias;
            CONTINUE;
          END IF;
          SELECT a.holder_key INTO v_owner FROM ${s}.aliases AS a WHERE a.alias = v_alias;
          IF v_owner = p_key THEN
            CONTINUE;
          END IF;
          IF v_owner IS NULL THEN
            RAISE EXCEPTION 'balance group % has a claim that could not be read', v_alias;
          END IF;
          DELETE FROM ${s}.aliases AS a WHERE a.alias = ANY (v_taken) AND a.holder_key = p_key;
          IF p_expected IS NULL THEN
            DELETE FROM ${s}.holders AS h WHERE h.holder_key = p_key;
          END IF;
          RETURN QUERY SELECT 'claimed'::text, NULL::bigint, v_alias, h.customer_id, h.holder_type, h.holder_id
            FROM ${s}.holders AS h WHERE h.holder_key = v_owner;
          RETURN;
        END LOOP;

        IF p_expected IS NOT NULL AND cardinality(p_claims) > 0 THEN
          UPDATE ${s}.holders AS h SET revision = v_revision, document = p_document WHERE h.holder_key = p_key;
        END IF;

        INSERT INTO ${s}.journal (holder_key, seq, id, reference, entry)
          SELECT p_key, e.seq, e.id, e.ref, e.entry
          FROM unnest(p_seqs, p_ids, p_refs, p_entries) AS e (seq, id, ref, entry);

        INSERT INTO ${s}.index_keys (kind, value, holder_key)
          SELECT k.kind, k.value, p_key FROM unnest(p_kinds, p_values) AS k (kind, value)
          ON CONFLICT DO NOTHING;

        RETURN QUERY SELECT 'committed'::text, v_revision, NULL::text, NULL::text, NULL::text, NULL::text;
      END
      $fn$;
    `,
  },
]

/** The schema version this build of the adapter writes. */
export const latestVersion: number = migrations.reduce((max, m) => Math.max(max, m.version), 0)

/** A database this build cannot use; the message names both versions and is safe to show. */
export class SchemaVersionError extends Error {
  override readonly name = "SchemaVersionError"
  constructor(
    readonly schema: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `the PostgreSQL schema ${schema} has creditlock schema version ${found}, written by a newer ` +
        `@creditlock/postgres; this version supports schema versions up to ${supported}. Upgrade ` +
        "@creditlock/postgres; the database was left untouched",
    )
  }
}

/**
 * The first key of the advisory lock migrations hold (`pg_advisory_xact_lock(key, hashtext(schema))`):
 * "crlk" in ASCII. Another application using the two-key form with this first key would wait on it
 * while a migration runs, nothing worse.
 */
export const ADVISORY_LOCK_KEY = 0x63726c6b

/** The highest version recorded in `schema` (0 when it has no schema yet). Reads only. */
export const currentVersion = async (client: ClientBase, quoted: string): Promise<number> => {
  const table = await client.query<{ readonly exists: string | null }>("SELECT to_regclass($1)::text AS exists", [
    `${quoted}.schema_version`,
  ])
  if (table.rows[0]?.exists == null) return 0
  const version = await client.query<{ readonly version: number | null }>(
    `SELECT max(version)::int AS version FROM ${quoted}.schema_version`,
  )
  return version.rows[0]?.version ?? 0
}

/**
 * Brings `schema` up to date on `client` (a dedicated connection): a read first (an up-to-date
 * schema is left alone, so a role without CREATE rights can use it), then, when something is
 * missing, one READ COMMITTED transaction under the advisory lock that reads the version again
 * (each statement with a fresh snapshot) — another process may have migrated meanwhile — and
 * applies what is still missing. Throws
 * {@link SchemaVersionError} on a newer schema (rolling back, so nothing is changed).
 */
export const migrate = async (client: ClientBase, schema: string, quoted: string): Promise<void> => {
  const seen = await currentVersion(client, quoted)
  if (seen > latestVersion) throw new SchemaVersionError(schema, seen, latestVersion)
  if (seen === latestVersion) return
  // READ COMMITTED whatever the database's default: at REPEATABLE READ or SERIALIZABLE the
  // snapshot would be taken by the lock statement, before its wait ends, and a process that waited
  // would read the version as it was before the migration it waited for.
  await client.query("BEGIN ISOLATION LEVEL READ COMMITTED")
  try {
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [ADVISORY_LOCK_KEY, schema])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoted}.schema_version (version int NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const version = await currentVersion(client, quoted)
    if (version > latestVersion) throw new SchemaVersionError(schema, version, latestVersion)
    for (const migration of migrations) {
      if (migration.version <= version) continue
      await client.query(migration.sql(quoted))
      await client.query(`INSERT INTO ${quoted}.schema_version (version) VALUES ($1)`, [migration.version])
    }
    await client.query("COMMIT")
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined)
    throw error
  }
}
