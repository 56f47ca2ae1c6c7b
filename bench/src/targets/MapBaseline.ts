/**
 * Baseline: the same logical work as a lock → modify → unlock cycle, written by hand over a
 * plain `Map` — random key + SHA-256, constant-time key check, TTL check, minimum check,
 * journal append — with no library.
 *
 * @module
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto"
import type { Target } from "../Harness.js"

interface Row {
  value: number
  lockHash: Buffer | null
  lockExpires: number
  readonly journal: Array<{ id: string; at: number; delta: number; before: number; after: number }>
}

const TTL = 120_000
const sha = (key: string) => createHash("sha256").update(key).digest()

/** A hand-written in-memory implementation. */
export const mapBaseline = (): Target => {
  const rows = new Map<string, Row>()
  const live = (row: Row, now: number) => row.lockHash !== null && now < row.lockExpires
  const get = (id: string) => {
    const row = rows.get(id)
    if (row === undefined) throw new Error("not found")
    return row
  }
  return {
    name: "plain Map (baseline)",
    open: async (id) => {
      if (!rows.has(id)) rows.set(id, { value: 0, lockHash: null, lockExpires: 0, journal: [] })
    },
    lock: async (id) => {
      const row = get(id)
      const now = Date.now()
      if (live(row, now)) return "locked"
      const key = randomBytes(16).toString("base64url")
      row.lockHash = sha(key)
      row.lockExpires = now + TTL
      return { key }
    },
    modify: async (id, key, delta) => {
      const row = get(id)
      const now = Date.now()
      if (!live(row, now) || row.lockHash === null || !timingSafeEqual(row.lockHash, sha(key))) throw new Error("lock")
      const after = row.value + delta
      if (!Number.isSafeInteger(after) || (delta < 0 && after < 0)) throw new Error("insufficient")
      row.journal.push({ id: randomUUID(), at: now, delta, before: row.value, after })
      row.value = after
    },
    unlock: async (id, key) => {
      const row = get(id)
      if (live(row, Date.now()) && row.lockHash !== null && timingSafeEqual(row.lockHash, sha(key))) row.lockHash = null
    },
    read: async (id) => ({ value: get(id).value, modifications: get(id).journal.length }),
    close: async () => {},
  }
}
