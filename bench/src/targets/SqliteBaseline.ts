/**
 * Baseline: a lock → modify → unlock cycle written by hand on better-sqlite3 — prepared
 * statements, one `BEGIN IMMEDIATE` transaction per operation, WAL, the same synchronous setting
 * as the library run — with random key + SHA-256, key check, TTL check, minimum check and a
 * journal row, and no library.
 *
 * @module
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto"
import Database from "better-sqlite3"
import type { Target } from "../Harness.js"

const TTL = 120_000
const sha = (key: string) => createHash("sha256").update(key).digest()

/** A hand-written SQLite implementation on the file `filename`. */
export const sqliteBaseline = (filename: string, synchronous: "FULL" | "NORMAL"): Target => {
  const db = new Database(filename)
  db.pragma("journal_mode = WAL")
  db.pragma(`synchronous = ${synchronous}`)
  db.pragma("busy_timeout = 5000")
  db.exec(`
    CREATE TABLE IF NOT EXISTS holders (id TEXT PRIMARY KEY, value INTEGER NOT NULL, seq INTEGER NOT NULL,
      lock_hash BLOB, lock_expires INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS journal (holder TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,
      at INTEGER NOT NULL, delta INTEGER NOT NULL, before INTEGER NOT NULL, after INTEGER NOT NULL,
      PRIMARY KEY (holder, seq));
  `)
  const insert = db.prepare(
    "INSERT OR IGNORE INTO holders (id, value, seq, lock_hash, lock_expires) VALUES (?, 0, 0, NULL, 0)",
  )
  const select = db.prepare<[string], { value: number; seq: number; lock_hash: Buffer | null; lock_expires: number }>(
    "SELECT value, seq, lock_hash, lock_expires FROM holders WHERE id = ?",
  )
  const setLock = db.prepare("UPDATE holders SET lock_hash = ?, lock_expires = ? WHERE id = ?")
  const setValue = db.prepare("UPDATE holders SET value = ?, seq = ? WHERE id = ?")
  const append = db.prepare(
    "INSERT INTO journal (holder, seq, id, at, delta, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
  )
  const count = db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM journal WHERE holder = ?")

  const live = (row: { lock_hash: Buffer | null; lock_expires: number }, now: number) =>
    row.lock_hash !== null && now < row.lock_expires
  const holds = (row: { lock_hash: Buffer | null; lock_expires: number }, key: string, now: number) =>
    live(row, now) && row.lock_hash !== null && timingSafeEqual(row.lock_hash, sha(key))
  const get = (id: string) => {
    const row = select.get(id)
    if (row === undefined) throw new Error("not found")
    return row
  }

  const lock = db.transaction((id: string) => {
    const now = Date.now()
    if (live(get(id), now)) return "locked" as const
    const key = randomBytes(16).toString("base64url")
    setLock.run(sha(key), now + TTL, id)
    return { key }
  })
  const modify = db.transaction((id: string, key: string, delta: number) => {
    const now = Date.now()
    const row = get(id)
    if (!holds(row, key, now)) throw new Error("lock")
    const after = row.value + delta
    if (!Number.isSafeInteger(after) || (delta < 0 && after < 0)) throw new Error("insufficient")
    setValue.run(after, row.seq + 1, id)
    append.run(id, row.seq + 1, randomUUID(), now, delta, row.value, after)
  })
  const unlock = db.transaction((id: string, key: string) => {
    if (holds(get(id), key, Date.now())) setLock.run(null, 0, id)
  })

  return {
    name: `raw better-sqlite3 ${synchronous} (baseline)`,
    open: async (id) => {
      insert.run(id)
    },
    lock: async (id) => lock.immediate(id),
    modify: async (id, key, delta) => modify.immediate(id, key, delta),
    unlock: async (id, key) => unlock.immediate(id, key),
    read: async (id) => ({ value: get(id).value, modifications: count.get(id)?.n ?? 0 }),
    close: async () => {
      db.close()
    },
  }
}
