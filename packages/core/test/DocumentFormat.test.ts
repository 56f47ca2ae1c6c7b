/**
 * The stored document format: format 2 (with the lock fencing token) is written; format 1 is
 * still read, and a lock granted on a format-1 holder takes token 1; any other format is refused
 * with a message saying what this version reads.
 */
import { decodeDocument, encodeDocument, type HolderRef } from "@creditlock/core/storage"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decideLock } from "../src/internal/lock.js"

const ref: HolderRef = { customerId: "c-1", holderType: "contracts", holderId: "s-1" }

/** A holder document as format 1 wrote it: no `lastLockToken`, a lock without `token`. */
const formatOne = {
  format: 1,
  ref,
  balanceGroupId: null,
  openedAt: 0,
  balances: [],
  lock: { keyHash: "a".repeat(64), grantedAt: 0, expiresAt: 1 },
  journalSeq: 1,
}

describe("holder document format", () => {
  it("writes format 2 and reads it back", () => {
    const document = decodeDocument(JSON.stringify(formatOne))
    const written = JSON.parse(encodeDocument({ ...document, lastLockToken: 3 })) as { format: number }
    expect(written.format).toBe(2)
    expect(decodeDocument(JSON.stringify(written))).toEqual({ ...document, lastLockToken: 3 })
  })

  it("refuses a format it does not know, naming the ones it reads", () => {
    expect(() => decodeDocument(JSON.stringify({ ...formatOne, format: 3 }))).toThrow(
      "holder document format 3 is not supported (this version reads 1 and 2); upgrade @creditlock/core",
    )
  })

  it("a lock granted on a format-1 holder (its old lock expired) takes fencing token 1", () => {
    const document = decodeDocument(JSON.stringify(formatOne))
    const grant = Either.getOrThrow(decideLock(document, 2, () => ({ keyHash: "b".repeat(64) }), 120_000))
    expect(grant.lock.token).toBe(1)
    expect(grant.document.lastLockToken).toBe(1)
    expect(grant.tookOver).toEqual(formatOne.lock)
  })
})
