/**
 * Baseline: a lock → modify → unlock cycle written by hand on node-postgres — one statement (one
 * transaction) per operation: random key + SHA-256 in Node; in SQL the key check, the TTL check,
 * the minimum check and a journal row inserted in the same statement as the balance — with no
 * library.
 *
 * @module
 */
import { createHash, randomBytes, randomUUID } from "node:crypto"
import pg from "pg"
import type { Target } from "../Harness.js"

const TTL = 120_000
const sha = (key: string) => createHash("sha256").update(key).digest("base64url")

/** Creates the baseline's two tables in `schema` of the database at `url` (idempotent). */
const createBaselineSchema = async (url: string, schema: string): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.holders (id text PRIMARY KEY, value bigint NOT NULL DEFAULT 0, hash text, exp bigint)`,
    )
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.journal (id uuid PRIMARY KEY, holder text NOT NULL, at bigint NOT NULL, delta bigint NOT NULL, before bigint NOT NULL, after bigint NOT NULL)`,
    )
    await client.query(`CREATE INDEX IF NOT EXISTS journal_holder ON ${schema}.journal (holder)`)
  } finally {
    await client.end()
  }
}

/** Counts the statements the clients of `pool` send (no target pipelines: each is a round trip). */
export const countingQueries = (pool: pg.Pool): NonNullable<Target["roundTrips"]> => {
  let sent = 0
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: Array<unknown>) => unknown
    ;(client as { query: (...args: Array<unknown>) => unknown }).query = (...args) => {
      sent++
      return query(...args)
    }
  })
  return { scope: "process", count: async () => sent }
}

/**
 * A hand-written PostgreSQL implementation on the database at `url`, its tables in `schema`
 * (created on first use, before the clock starts); a pool of `poolSize` connections.
 */
export const postgresBaseline = (url: string, schema: string, poolSize = 10): Target => {
  let created: Promise<void> | undefined
  const ready = () => {
    created ??= createBaselineSchema(url, schema)
    return created
  }
  const pool = new pg.Pool({ connectionString: url, max: poolSize })
  pool.on("error", () => undefined)
  const roundTrips = countingQueries(pool)
  const lock = `UPDATE ${schema}.holders SET hash = $2, exp = $3 WHERE id = $1 AND (hash IS NULL OR exp <= $4) RETURNING 1`
  const modify = `WITH changed AS (
      UPDATE ${schema}.holders SET value = value + $4
      WHERE id = $1 AND hash = $2 AND exp > $3 AND (value + $4 >= 0 OR $4 > 0)
      RETURNING value - $4 AS before, value AS after)
    INSERT INTO ${schema}.journal (id, holder, at, delta, before, after)
    SELECT $5, $1, $3, $4, before, after FROM changed RETURNING after`
  const unlock = `UPDATE ${schema}.holders SET hash = NULL, exp = NULL WHERE id = $1 AND hash = $2 AND exp > $3`
  return {
    name: "raw pg, one statement per operation (baseline)",
    roundTrips,
    open: async (id) => {
      await ready()
      await pool.query(`INSERT INTO ${schema}.holders (id) VALUES ($1) ON CONFLICT DO NOTHING`, [id])
    },
    lock: async (id) => {
      const key = randomBytes(16).toString("base64url")
      const now = Date.now()
      const result = await pool.query(lock, [id, sha(key), now + TTL, now])
      return result.rowCount === 1 ? { key } : "locked"
    },
    modify: async (id, key, delta) => {
      const result = await pool.query(modify, [id, sha(key), Date.now(), delta, randomUUID()])
      if (result.rowCount !== 1) throw new Error("the modification was refused")
    },
    unlock: async (id, key) => {
      await pool.query(unlock, [id, sha(key), Date.now()])
    },
    read: async (id) => {
      await ready()
      const value = await pool.query<{ value: string }>(`SELECT value FROM ${schema}.holders WHERE id = $1`, [id])
      const count = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.journal WHERE holder = $1`, [
        id,
      ])
      return { value: Number(value.rows[0]?.value ?? 0), modifications: Number(count.rows[0]?.n ?? 0) }
    },
    close: () => pool.end(),
  }
}
