/**
 * Conformance: the Promise facade over the adapter — same operations, errors as `CreditError`.
 *
 * @module
 */
import { CreditError, createCreditEngine } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { change, contract, type StorageLayer } from "./Harness.js"

export const facadeTests = (storage: StorageLayer) => {
  describe("Promise facade", () => {
    it("runs open → lock → modify → unlock and rejects with CreditError", async () => {
      await using engine = createCreditEngine({ storage })
      const ref = contract()
      expect((await engine.openHolder(ref)).created).toBe(true)
      const seen: Array<string> = []
      const stop = await engine.onEvent((event) => seen.push(event._tag))
      const { lock } = await engine.lock(ref)
      expect(typeof lock.key).toBe("string")
      const modified = await engine.modify(ref, lock.key, change("GBP", 250))
      expect(modified.current.credit[0]?.amount).toEqual({ currencyCode: "GBP", value: 250 })

      const locked = await engine.lock(ref).catch((e: unknown) => e)
      expect(locked).toBeInstanceOf(CreditError)
      expect(locked).toMatchObject({
        tag: "CreditLocked",
        status: 423,
        code: "CREDIT_LOCKED",
        title: "Locked",
        expiresAt: lock.expiry,
      })
      expect(lock.token, "the first grant's fencing token").toBe(1)
      // A refusal as a value: nothing thrown, the expiry of the lock in the way.
      expect(await engine.tryLock(ref)).toEqual({ granted: false, expiresAt: lock.expiry })
      expect(
        (await engine.modify(ref, "not-the-key", change("GBP", 1)).catch((e: unknown) => e)) as CreditError,
      ).toMatchObject({
        code: "LOCK_KEY_MISMATCH",
        expiresAt: lock.expiry,
      })
      const insufficient = await engine.modify(ref, lock.key, change("GBP", -251)).catch((e: unknown) => e)
      expect(insufficient).toMatchObject({ status: 422, code: "INSUFFICIENT_CREDIT" })
      const invalid = await engine.modify(ref, lock.key, { reason: "", modifications: [] }).catch((e: unknown) => e)
      expect(invalid).toMatchObject({ status: 400, code: "INVALID_REQUEST", title: "Invalid request body" })
      expect((invalid as CreditError).detail).toContain("reason")

      const extended = await engine.extendLock(ref, lock.key, "5 minutes")
      expect(extended.lock.token).toBe(lock.token)
      expect(extended.lock.expiry.getTime()).toBeGreaterThan(lock.expiry.getTime())
      await engine.unlock(ref, lock.key)
      expect((await engine.verify(ref)).ok).toBe(true)
      expect((await engine.journal(ref)).entries).toHaveLength(2)
      expect((await engine.unlockCustomer({ customerId: ref.customerId })).released).toEqual([])
      await stop()
      expect(seen).toEqual(["LockGranted", "LockExtended", "LockReleased"])
    })

    it("withLock: resolves with fn's value and releases; passes fn's rejection through; gives up on abort", async () => {
      await using engine = createCreditEngine({ storage })
      const ref = contract()
      await engine.openHolder(ref)
      const billed = await engine.withLock(ref, async ({ lock }, signal) => {
        expect(signal.aborted).toBe(false)
        const r = await engine.modify(ref, lock.key, change("GBP", 75, "bill", "bill-75"))
        return r.current.credit[0]?.amount.value
      })
      expect(billed).toBe(75)
      const mine = new Error("the caller's own failure")
      await expect(engine.withLock(ref, () => Promise.reject(mine))).rejects.toBe(mine)

      const other = await engine.lock(ref)
      const controller = new AbortController()
      const waiting = engine.withLock(ref, async () => "never reached", { signal: controller.signal })
      setTimeout(() => controller.abort(new Error("gave up")), 100)
      await expect(waiting).rejects.toThrow("gave up")
      const locked = await engine.withLock(ref, async () => "no", { wait: 0 }).catch((e: unknown) => e)
      expect(locked).toMatchObject({ code: "CREDIT_LOCKED", expiresAt: other.lock.expiry })
      await engine.unlock(ref, other.lock.key)
      expect((await engine.lock(ref)).lock.token, "every lock above was released").toBe(other.lock.token + 1)
    })
  })
}
