/**
 * Conformance: every rule and error path of the domain (holders, locks, modifications,
 * idempotency, customer unlock, journal), each rejection checked to change nothing.
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { encodeDocument, type HolderRef, Storage } from "@creditlock/core/storage"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, type Scope, TestClock } from "effect"
import {
  change,
  contract,
  creditValue,
  customerHolder,
  engineWith,
  expectRejected,
  freshCustomer,
  type StorageLayer,
  snapshot,
} from "./Harness.js"

export const domainTests = (storage: StorageLayer) => {
  const provide = <A, E, R extends CreditEngine | Storage | Scope.Scope>(effect: Effect.Effect<A, E, R>) =>
    Effect.provide(effect, engineWith(storage))

  /** Opens a holder and returns its ref. */
  const opened = (ref: HolderRef = contract()) => Effect.flatMap(CreditEngine, (e) => Effect.as(e.openHolder(ref), ref))

  /** Opens a holder, locks it, credits it with `initial` GBP (if non-zero) and returns ref and key. */
  const funded = (initial: number, ref: HolderRef = contract()) =>
    Effect.gen(function* () {
      const engine = yield* CreditEngine
      yield* engine.openHolder(ref)
      const { lock } = yield* engine.lock(ref)
      if (initial !== 0) yield* engine.modify(ref, lock.key, change("GBP", initial))
      return { ref, key: lock.key }
    })

  describe("holders", () => {
    it.effect("opening is idempotent; without an explicit balance group a holder has none (no implicit alias)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          const first = yield* engine.openHolder(ref)
          expect(first).toEqual({ holder: ref, balanceGroupId: null, created: true })
          const again = yield* engine.openHolder(ref)
          expect(again.created).toBe(false)
          const view = yield* engine.getCredit(ref)
          expect(view).toEqual({ holder: ref, balanceGroupId: null, current: { credit: [] } })
          // The holder id is not an alias: the balance-group calls cannot find the holder by it.
          yield* expectRejected(ref, "HolderNotFound", engine.getCreditLimits(ref.holderId))
          // Opening again with one attaches it (journaled), once.
          const attached = yield* engine.openHolder(ref, { balanceGroupId: `bg-${ref.holderId}` })
          expect(attached).toEqual({ holder: ref, balanceGroupId: `bg-${ref.holderId}`, created: false })
          expect((yield* engine.getCreditLimits(`bg-${ref.holderId}`)).holder).toEqual(ref)
          expect((yield* engine.journal(ref)).entries.map((e) => e.kind)).toEqual(["opened", "balance-group"])
          yield* expectRejected(ref, "IdempotencyConflict", engine.openHolder(ref, { balanceGroupId: "another" }))
          expect((yield* engine.verify(ref)).ok).toBe(true)
        }),
      ),
    )

    it.effect("no holder can squat another's balance group; two customers' equal holder ids both work", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const storage = yield* Storage
          const holderId = `sub-${randomUUID()}`
          const theirs = contract(freshCustomer(), holderId)
          const bg = `0.0.0.1+-balance_group+${randomUUID()}`
          yield* engine.openHolder(theirs, { balanceGroupId: bg })
          // Another customer's holder with the same holder id, opened plainly or claiming the alias,
          // neither makes the first one's balance group ambiguous nor unreachable.
          const squatter = contract(freshCustomer(), holderId)
          yield* engine.openHolder(squatter)
          yield* expectRejected(squatter, "IdempotencyConflict", engine.openHolder(squatter, { balanceGroupId: bg }))
          expect((yield* engine.setCreditLimits(bg, { resourceId: 826, limit: 1 })).holder).toEqual(theirs)
          expect(yield* storage.lookup({ kind: "balanceGroup", value: bg })).toEqual([theirs])
          // With distinct aliases, both holders work on the balance-group calls.
          const bg2 = `0.0.0.1+-balance_group+${randomUUID()}`
          yield* engine.openHolder(squatter, { balanceGroupId: bg2 })
          expect((yield* engine.getCreditLimits(bg2)).holder).toEqual(squatter)
          expect((yield* engine.getCreditLimits(bg)).holder).toEqual(theirs)
        }),
      ),
    )

    it.effect("racing opens claiming one new alias: exactly one holder gets it", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const bg = `race-${randomUUID()}`
          const refs = Array.from({ length: 12 }, () => contract())
          const outcomes = yield* Effect.forEach(
            refs,
            (ref) => Effect.either(engine.openHolder(ref, { balanceGroupId: bg })),
            {
              concurrency: "unbounded",
            },
          )
          const winners = refs.filter((_, i) => outcomes[i]?._tag === "Right")
          expect(winners).toHaveLength(1)
          for (const outcome of outcomes) {
            if (outcome._tag === "Left") expect(outcome.left._tag).toBe("IdempotencyConflict")
          }
          expect((yield* engine.getCreditLimits(bg)).holder).toEqual(winners[0])
        }),
      ),
    )

    it.effect("a holder keeps the balance group it was opened with; another one is a conflict", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          const bg = `0.0.0.1+-balance_group+${randomUUID()}`
          expect((yield* engine.openHolder(ref, { balanceGroupId: bg })).balanceGroupId).toBe(bg)
          expect((yield* engine.openHolder(ref)).balanceGroupId).toBe(bg)
          yield* expectRejected(ref, "IdempotencyConflict", engine.openHolder(ref, { balanceGroupId: "other" }))
          // An explicit balance group another holder answers to is refused.
          const other = contract()
          const error = yield* expectRejected(
            other,
            "IdempotencyConflict",
            engine.openHolder(other, { balanceGroupId: bg }),
          )
          expect(error.detail).toContain("another holder")
        }),
      ),
    )

    it.effect("ids: 1–128 characters, no '/', whitespace or control characters; BRM ids are valid", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const customerId = freshCustomer()
          const valid = [
            "0.0.0.1+-balance_group+82896",
            "x".repeat(128),
            "é".repeat(128),
            "😀".repeat(128),
            "a-b_c.d:e",
          ]
          for (const holderId of valid) {
            expect((yield* engine.openHolder({ customerId, holderType: "contracts", holderId })).created).toBe(true)
          }
          const invalid = [
            "",
            "x".repeat(129),
            "😀".repeat(129),
            "a/b",
            "a b",
            "a\tb",
            "a\nb",
            "a\u0000b",
            "a\u007fb",
            "a\u00a0b",
          ]
          for (const holderId of invalid) {
            const ref = { customerId, holderType: "contracts" as const, holderId }
            const error = yield* expectRejected(ref, "InvalidRequest", engine.openHolder(ref))
            expect(error.status).toBe(400)
          }
          const badCustomer = { customerId: "has space", holderType: "customers" as const, holderId: "h" }
          yield* expectRejected(badCustomer, "InvalidRequest", engine.openHolder(badCustomer))
          const badType = { customerId, holderType: "contract", holderId: "h" } as unknown as HolderRef
          yield* expectRejected([], "InvalidRequest", engine.openHolder(badType))
          yield* expectRejected([], "InvalidRequest", engine.getCredit(null as unknown as HolderRef))
        }),
      ),
    )

    it.effect("every operation on a holder that was never opened fails with HolderNotFound (404)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          const calls = [
            engine.getCredit(ref),
            engine.lock(ref),
            engine.modify(ref, "key", change("GBP", 1)),
            engine.unlock(ref, "key"),
            engine.journal(ref),
            engine.verify(ref),
          ] as const
          for (const call of calls) {
            const error = yield* expectRejected(
              ref,
              "HolderNotFound",
              call as Effect.Effect<unknown, { _tag: string; status: number }>,
            )
            expect(error.status).toBe(404)
          }
          expect(Option.isNone((yield* snapshot(ref)).stored)).toBe(true)
        }),
      ),
    )
  })

  describe("locks", () => {
    it.effect("lock grants a 128-bit base64url key with a 120 s expiry and returns the credit", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* TestClock.setTime(1_700_000_000_000)
          const ref = yield* opened()
          const { credit, lock } = yield* engine.lock(ref)
          const key = Redacted.value(lock.key)
          expect(key).toMatch(/^[A-Za-z0-9_-]{22}$/)
          expect(Buffer.from(key, "base64url")).toHaveLength(16)
          expect(lock.expiry.getTime()).toBe(1_700_000_000_000 + 120_000)
          expect(credit).toEqual({ holder: ref, balanceGroupId: null, current: { credit: [] } })
          expect(String(lock.key)).not.toContain(key)
        }),
      ),
    )

    it.effect("keys are random per lock", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const keys = new Set<string>()
          for (let i = 0; i < 20; i++) {
            const { lock } = yield* engine.lock(ref)
            keys.add(Redacted.value(lock.key))
            yield* engine.unlock(ref, lock.key)
          }
          expect(keys.size).toBe(20)
        }),
      ),
    )

    it.effect("storage keeps only the SHA-256 of the key", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const { lock } = yield* engine.lock(ref)
          const key = Redacted.value(lock.key)
          const { stored } = yield* snapshot(ref)
          const document = Option.getOrThrow(stored).document
          const json = encodeDocument(document)
          expect(json).not.toContain(key)
          expect(document.lock?.keyHash).toBe(createHash("sha256").update(key).digest("base64url"))
        }),
      ),
    )

    it.effect("a live lock held by anyone refuses another lock with CreditLocked (423), never revealing the key", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const { lock } = yield* engine.lock(ref)
          const error = yield* expectRejected(ref, "CreditLocked", engine.lock(ref))
          expect(error.status).toBe(423)
          expect(error.code).toBe("CREDIT_LOCKED")
          expect(error.detail).toContain(lock.expiry.toISOString())
          expect(error.detail).not.toContain(Redacted.value(lock.key))
        }),
      ),
    )

    it.effect("tryLock grants as lock does, and answers a live lock with the refusal as a value", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const first = yield* engine.tryLock(ref)
          if (!first.granted) return expect.fail("a free holder must be granted")
          expect(first.lock.token).toBe(1)
          expect(yield* engine.tryLock(ref)).toEqual({ granted: false, expiresAt: first.lock.expiry })
          // The refusal changed nothing: the first lock still holds, with its key.
          yield* engine.modify(ref, first.lock.key, change("GBP", 5))
          yield* engine.unlock(ref, first.lock.key)
          const again = yield* engine.tryLock(ref)
          expect(again.granted && again.lock.token).toBe(2)
          // Other failures stay failures.
          yield* expectRejected(ref, "HolderNotFound", engine.tryLock(contract()))
          yield* expectRejected(ref, "InvalidRequest", engine.tryLock({ ...ref, holderId: "a/b" }))
        }),
      ),
    )

    it.effect("unlock releases the lock; the holder can be locked again and the old key is refused", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          yield* engine.unlock(ref, key)
          yield* expectRejected(ref, "LockNotHeld", engine.modify(ref, key, change("GBP", 1)))
          const { lock } = yield* engine.lock(ref)
          yield* expectRejected(ref, "LockKeyMismatch", engine.modify(ref, key, change("GBP", 1)))
          yield* expectRejected(ref, "LockKeyMismatch", engine.unlock(ref, key))
          yield* engine.modify(ref, lock.key, change("GBP", 1))
          expect(yield* creditValue(ref, "GBP")).toBe(101)
        }),
      ),
    )

    it.effect("unlock without a live lock succeeds and changes nothing", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const before = yield* snapshot(ref)
          yield* engine.unlock(ref, "never-issued")
          const { lock } = yield* engine.lock(ref)
          yield* engine.unlock(ref, lock.key)
          const released = yield* snapshot(ref)
          yield* engine.unlock(ref, lock.key)
          expect(yield* snapshot(ref)).toEqual(released)
          expect((yield* snapshot(ref)).journal).toEqual(before.journal)
        }),
      ),
    )

    it.effect("unlock with another key while locked fails with LockKeyMismatch (423)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          yield* engine.lock(ref)
          const error = yield* expectRejected(ref, "LockKeyMismatch", engine.unlock(ref, "not-the-key"))
          expect(error.status).toBe(423)
          yield* expectRejected(ref, "InvalidRequest", engine.unlock(ref, ""))
        }),
      ),
    )
  })

  describe("modifications", () => {
    it.effect("the first modification in a currency creates its entry at 0; credit may be raised and lowered", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* TestClock.setTime(1_000)
          const { ref, key } = yield* funded(0)
          const result = yield* engine.modify(ref, key, change("GBP", 500, "top-up"))
          expect(result.current.credit).toEqual([
            { type: "monetary", amount: { currencyCode: "GBP", value: 500 }, updatedAt: new Date(1_000) },
          ])
          expect(result.replayed).toBe(false)
          yield* TestClock.adjust(5)
          const both = yield* engine.modify(ref, key, {
            reason: "two currencies",
            modifications: [
              { type: "monetary", changeAmount: { currencyCode: "GBP", value: -500 } },
              { type: "monetary", changeAmount: { currencyCode: "EUR", value: 7 } },
            ],
          })
          expect(
            both.current.credit.map((c) => [c.amount.currencyCode, c.amount.value, c.updatedAt.getTime()]),
          ).toEqual([
            ["GBP", 0, 1_005],
            ["EUR", 7, 1_005],
          ])
          expect((yield* engine.getCredit(ref)).current.credit).toEqual(both.current.credit)
        }),
      ),
    )

    it.effect(
      "a debit below the minimum (0 without a limit) fails with InsufficientCredit (422) and changes nothing",
      () =>
        provide(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const { ref, key } = yield* funded(100)
            const error = yield* expectRejected(ref, "InsufficientCredit", engine.modify(ref, key, change("GBP", -101)))
            expect(error.status).toBe(422)
            yield* expectRejected(ref, "InsufficientCredit", engine.modify(ref, key, change("EUR", -1)))
            yield* engine.modify(ref, key, change("GBP", -100))
            expect(yield* creditValue(ref, "GBP")).toBe(0)
          }),
        ),
    )

    it.effect("all-or-nothing: one failing modification rejects the whole request", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          yield* expectRejected(
            ref,
            "InsufficientCredit",
            engine.modify(ref, key, {
              reason: "mixed",
              modifications: [
                { type: "monetary", changeAmount: { currencyCode: "EUR", value: 1_000 } },
                { type: "monetary", changeAmount: { currencyCode: "GBP", value: -1_000 } },
              ],
            }),
          )
          expect((yield* engine.getCredit(ref)).current.credit.map((c) => c.amount.currencyCode)).toEqual(["GBP"])
        }),
      ),
    )

    it.effect("credit may always be raised, even while it is below the minimum", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(0)
          yield* engine.modify(ref, key, change("GBP", 1))
          expect(yield* creditValue(ref, "GBP")).toBe(1)
        }),
      ),
    )

    it.effect("results outside ±(2^53 − 1) fail with AmountOutOfRange (422)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(Number.MAX_SAFE_INTEGER)
          const error = yield* expectRejected(ref, "AmountOutOfRange", engine.modify(ref, key, change("GBP", 1)))
          expect(error.status).toBe(422)
          yield* engine.modify(ref, key, change("GBP", -Number.MAX_SAFE_INTEGER))
          expect(yield* creditValue(ref, "GBP")).toBe(0)
        }),
      ),
    )

    it.effect("malformed requests fail with InvalidRequest (400) and change nothing", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          const m = (currencyCode: unknown, value: unknown, type: unknown = "monetary") => ({
            type,
            changeAmount: { currencyCode, value },
          })
          const bad: ReadonlyArray<unknown> = [
            { reason: "", modifications: [m("GBP", 1)] },
            { reason: "   ", modifications: [m("GBP", 1)] },
            { reason: "x".repeat(1001), modifications: [m("GBP", 1)] },
            { reason: 42, modifications: [m("GBP", 1)] },
            { modifications: [m("GBP", 1)] },
            { reason: "r", modifications: [] },
            { reason: "r" },
            { reason: "r", modifications: [m("GBP", 0)] },
            { reason: "r", modifications: [m("GBP", 1.5)] },
            { reason: "r", modifications: [m("GBP", "1")] },
            { reason: "r", modifications: [m("GBP", Number.MAX_SAFE_INTEGER + 1)] },
            { reason: "r", modifications: [m("GBP", Number.NaN)] },
            { reason: "r", modifications: [m("GBP", Number.POSITIVE_INFINITY)] },
            { reason: "r", modifications: [m("gbp", 1)] },
            { reason: "r", modifications: [m("XYZ", 1)] },
            { reason: "r", modifications: [m("DEM", 1)] },
            { reason: "r", modifications: [m("GBP", 1, "points")] },
            { reason: "r", modifications: [{ type: "monetary" }] },
            { reason: "r", modifications: [m("GBP", 1)], reference: "" },
            { reason: "r", modifications: [m("GBP", 1)], reference: "x".repeat(129) },
            { reason: "r", modifications: [m("GBP", 1)], reference: "a\nb" },
            null,
            "text",
          ]
          for (const request of bad) {
            const error = yield* expectRejected(ref, "InvalidRequest", engine.modify(ref, key, request as never))
            expect(error.status).toBe(400)
            expect(error.detail.length).toBeGreaterThan(0)
          }
          yield* expectRejected(ref, "InvalidRequest", engine.modify(ref, "", change("GBP", 1)))
          const long = yield* expectRejected(
            ref,
            "InvalidRequest",
            engine.modify(ref, "k".repeat(257), change("GBP", 1)),
          )
          expect(long.detail).not.toContain("kkkk")
          yield* engine.modify(ref, key, {
            reason: "x".repeat(1000),
            modifications: [m("GBP", 1) as never],
            reference: "r".repeat(128),
          })
        }),
      ),
    )

    it.effect("the same credit twice in one request fails with DuplicateCreditType (422)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          const error = yield* expectRejected(
            ref,
            "DuplicateCreditType",
            engine.modify(ref, key, {
              reason: "dup",
              modifications: [
                { type: "monetary", changeAmount: { currencyCode: "GBP", value: 1 } },
                { type: "monetary", changeAmount: { currencyCode: "EUR", value: 1 } },
                { type: "monetary", changeAmount: { currencyCode: "GBP", value: 2 } },
              ],
            }),
          )
          expect(error.status).toBe(422)
        }),
      ),
    )

    it.effect("modify needs the live lock: none → LockNotHeld; another key → LockKeyMismatch (423)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const notHeld = yield* expectRejected(ref, "LockNotHeld", engine.modify(ref, "whatever", change("GBP", 1)))
          expect(notHeld.status).toBe(423)
          expect(notHeld.code).toBe("LOCK_NOT_HELD")
          yield* engine.lock(ref)
          const mismatch = yield* expectRejected(
            ref,
            "LockKeyMismatch",
            engine.modify(ref, "whatever", change("GBP", 1)),
          )
          expect(mismatch.code).toBe("LOCK_KEY_MISMATCH")
          const now = yield* TestClock.currentTimeMillis
          expect(mismatch, "says when the live lock expires").toMatchObject({ expiresAt: new Date(now + 120_000) })
        }),
      ),
    )

    it.effect("fencing tokens increase with every grant: release, takeover, admin unlock; entries record them", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const tokens: Array<number> = []
          const first = yield* engine.lock(ref)
          tokens.push(first.lock.token)
          yield* engine.modify(ref, first.lock.key, change("GBP", 10))
          yield* engine.unlock(ref, first.lock.key)
          tokens.push((yield* engine.lock(ref)).lock.token)
          yield* TestClock.adjust("121 seconds")
          const takeover = yield* engine.lock(ref)
          tokens.push(takeover.lock.token)
          yield* engine.modify(ref, takeover.lock.key, change("GBP", 5))
          yield* engine.unlockCustomer({ customerId: ref.customerId })
          tokens.push((yield* engine.lock(ref)).lock.token)
          expect(tokens).toEqual([1, 2, 3, 4])
          const entries = (yield* engine.journal(ref)).entries.filter((e) => e.kind === "modification")
          expect(entries.map((e) => e.lockToken)).toEqual([1, 3])
          // The token is the holder's own: another holder starts at 1.
          expect((yield* engine.lock(yield* opened())).lock.token).toBe(1)
        }),
      ),
    )

    it.effect("a lock on one holder does not open another", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { key } = yield* funded(10)
          const other = yield* opened()
          yield* engine.lock(other)
          yield* expectRejected(other, "LockKeyMismatch", engine.modify(other, key, change("GBP", 1)))
        }),
      ),
    )
  })

  describe("idempotency", () => {
    it.effect("a retry with the same reference returns the original result without applying again", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          const first = yield* engine.modify(ref, key, change("GBP", -30, "order", "ref-1"))
          yield* engine.modify(ref, key, change("GBP", 5))
          const before = yield* snapshot(ref)
          const retry = yield* engine.modify(ref, key, change("GBP", -30, "order", "ref-1"))
          expect(retry).toEqual({ ...first, replayed: true })
          expect(yield* snapshot(ref)).toEqual(before)
          expect(yield* creditValue(ref, "GBP")).toBe(75)
        }),
      ),
    )

    it.effect("the replay works after the lock was released or expired, with any key", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          const first = yield* engine.modify(ref, key, change("GBP", 10, "order", "ref-2"))
          yield* engine.unlock(ref, key)
          expect(yield* engine.modify(ref, key, change("GBP", 10, "order", "ref-2"))).toEqual({
            ...first,
            replayed: true,
          })
          yield* engine.lock(ref)
          yield* TestClock.adjust("121 seconds")
          expect(yield* engine.modify(ref, "stale", change("GBP", 10, "order", "ref-2"))).toEqual({
            ...first,
            replayed: true,
          })
          expect(yield* creditValue(ref, "GBP")).toBe(110)
        }),
      ),
    )

    it.effect("the same reference with a different request fails with IdempotencyConflict (409)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          yield* engine.modify(ref, key, change("GBP", 10, "order", "ref-3"))
          for (const other of [
            change("GBP", 11, "order", "ref-3"),
            change("GBP", 10, "other", "ref-3"),
            change("EUR", 10, "order", "ref-3"),
          ]) {
            const error = yield* expectRejected(ref, "IdempotencyConflict", engine.modify(ref, key, other))
            expect(error.status).toBe(409)
          }
        }),
      ),
    )

    it.effect("modifications listed in another order are the same request", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          const a = { type: "monetary", changeAmount: { currencyCode: "GBP", value: 1 } } as const
          const b = { type: "monetary", changeAmount: { currencyCode: "EUR", value: 2 } } as const
          const first = yield* engine.modify(ref, key, { reason: "r", modifications: [a, b], reference: "ref-4" })
          const again = yield* engine.modify(ref, key, { reason: "r", modifications: [b, a], reference: "ref-4" })
          expect(again.entryId).toBe(first.entryId)
          expect(again.replayed).toBe(true)
        }),
      ),
    )

    it.effect("references are per holder", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const one = yield* funded(0)
          const two = yield* funded(0)
          const a = yield* engine.modify(one.ref, one.key, change("GBP", 5, "r", "shared-ref"))
          const b = yield* engine.modify(two.ref, two.key, change("GBP", 6, "r", "shared-ref"))
          expect(a.entryId).not.toBe(b.entryId)
          expect(b.replayed).toBe(false)
          expect(yield* creditValue(two.ref, "GBP")).toBe(6)
        }),
      ),
    )

    it.effect("a rejected request does not consume its reference", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(10)
          yield* expectRejected(ref, "InsufficientCredit", engine.modify(ref, key, change("GBP", -20, "r", "ref-5")))
          yield* engine.modify(ref, key, change("GBP", 20, "r", "ref-5"))
          expect(yield* creditValue(ref, "GBP")).toBe(30)
        }),
      ),
    )
  })

  describe("customer unlock", () => {
    const lockedCustomer = Effect.gen(function* () {
      const engine = yield* CreditEngine
      const customerId = freshCustomer()
      const a = contract(customerId)
      const b = customerHolder(customerId)
      const c = contract(customerId)
      for (const ref of [a, b, c]) yield* engine.openHolder(ref)
      const lockA = yield* engine.lock(a)
      const lockB = yield* engine.lock(b)
      return { customerId, a, b, c, keyA: lockA.lock.key, keyB: lockB.lock.key }
    })

    it.effect("by customer id: releases every live lock of every holder, whoever holds them, and journals it", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { customerId, a, b, c, keyA, keyB } = yield* lockedCustomer
          const result = yield* engine.unlockCustomer({ customerId })
          expect(result.customerId).toBe(customerId)
          expect(new Set(result.holders.map((h) => h.holderId))).toEqual(new Set([a.holderId, b.holderId, c.holderId]))
          expect(new Set(result.released.map((r) => r.holder.holderId))).toEqual(new Set([a.holderId, b.holderId]))
          yield* expectRejected(a, "LockNotHeld", engine.modify(a, keyA, change("GBP", 1)))
          yield* expectRejected(b, "LockNotHeld", engine.modify(b, keyB, change("GBP", 1)))
          const page = yield* engine.journal(a)
          const last = page.entries.at(-1)
          expect(last?.kind).toBe("admin-unlock")
          expect(last?.id).toBe(result.released.find((r) => r.holder.holderId === a.holderId)?.entryId)
          expect((yield* engine.journal(c)).entries.map((e) => e.kind)).toEqual(["opened"])
          yield* engine.lock(a)
          expect((yield* engine.unlockCustomer({ customerId: freshCustomer() }).pipe(Effect.flip))._tag).toBe(
            "HolderNotFound",
          )
        }),
      ),
    )

    it.effect("by subscription id (a contracts holder) and by order id (entry id or reference)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const first = yield* lockedCustomer
          const bySubscription = yield* engine.unlockCustomer({ subscriptionId: first.c.holderId })
          expect(bySubscription.customerId).toBe(first.customerId)
          expect(bySubscription.released).toHaveLength(2)

          const { ref, key } = yield* funded(0, contract(first.customerId))
          const entry = yield* engine.modify(ref, key, change("GBP", 5, "r", "order-77"))
          const byEntry = yield* engine.unlockCustomer({ orderId: entry.entryId })
          expect(byEntry.released.map((r) => r.holder)).toEqual([ref])
          const relocked = yield* engine.lock(ref)
          const byReference = yield* engine.unlockCustomer({ orderId: "order-77" })
          expect(byReference.released.map((r) => r.holder)).toEqual([ref])
          yield* expectRejected(ref, "LockNotHeld", engine.modify(ref, relocked.lock.key, change("GBP", 1)))
          const customerLevel = yield* engine.unlockCustomer({ subscriptionId: first.b.holderId }).pipe(Effect.flip)
          expect(customerLevel._tag).toBe("HolderNotFound")
        }),
      ),
    )

    it.effect("none given, or more than one → InvalidRequest (400); nothing found → HolderNotFound (404)", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { a, b } = yield* lockedCustomer
          yield* expectRejected([a, b], "InvalidRequest", engine.unlockCustomer({}))
          yield* expectRejected(
            [a, b],
            "InvalidRequest",
            engine.unlockCustomer({ customerId: a.customerId, orderId: "x" }),
          )
          yield* expectRejected([a, b], "InvalidRequest", engine.unlockCustomer({ customerId: "bad id" }))
          yield* expectRejected([a, b], "HolderNotFound", engine.unlockCustomer({ subscriptionId: "nobody" }))
          yield* expectRejected([a, b], "HolderNotFound", engine.unlockCustomer({ orderId: "no-such-order" }))
        }),
      ),
    )

    it.effect("a lookup matching holders of more than one customer → IdempotencyConflict (409), nothing unlocked", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const subscriptionId = `sub-shared-${freshCustomer()}`
          const one = contract(freshCustomer(), subscriptionId)
          const two = contract(freshCustomer(), subscriptionId)
          yield* engine.openHolder(one)
          yield* engine.openHolder(two)
          yield* engine.lock(one)
          yield* engine.lock(two)
          const error = yield* expectRejected(
            [one, two],
            "IdempotencyConflict",
            engine.unlockCustomer({ subscriptionId }),
          )
          expect(error.status).toBe(409)
        }),
      ),
    )

    it.effect("a customer without live locks unlocks nothing and journals nothing", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = yield* opened()
          const before = yield* snapshot(ref)
          const result = yield* engine.unlockCustomer({ customerId: ref.customerId })
          expect(result.released).toEqual([])
          expect(yield* snapshot(ref)).toEqual(before)
        }),
      ),
    )
  })

  describe("journal", () => {
    it.effect("records every change in order with before, delta and after, and pages", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* TestClock.setTime(50_000)
          const { ref, key } = yield* funded(0)
          for (let i = 1; i <= 5; i++) yield* engine.modify(ref, key, change("GBP", i * 10, `step ${i}`, `r${i}`))
          const all = yield* engine.journal(ref)
          expect(all.next).toBeNull()
          expect(all.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6])
          expect(all.entries[0]?.kind).toBe("opened")
          expect(all.entries[2]).toMatchObject({
            seq: 3,
            at: 50_000,
            holder: ref,
            kind: "modification",
            reason: "step 2",
            reference: "r2",
            changes: [{ currencyCode: "GBP", delta: 20, before: 10, after: 30 }],
          })
          expect(new Set(all.entries.map((e) => e.id)).size).toBe(6)
          const page1 = yield* engine.journal(ref, { limit: 4 })
          expect(page1.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4])
          expect(page1.next).toBe(4)
          const page2 = yield* engine.journal(ref, { after: page1.next ?? 0, limit: 4 })
          expect(page2.entries.map((e) => e.seq)).toEqual([5, 6])
          expect(page2.next).toBeNull()
          expect((yield* engine.journal(ref, { after: 6 })).entries).toEqual([])
          for (const bad of [{ limit: 0 }, { limit: 1001 }, { after: -1 }, { after: 1.5 }]) {
            yield* expectRejected(ref, "InvalidRequest", engine.journal(ref, bad))
          }
        }),
      ),
    )

    it.effect("verify: the deltas of each currency sum to its current value", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* funded(100)
          yield* engine.modify(ref, key, change("EUR", 40))
          yield* engine.modify(ref, key, change("GBP", -60))
          const report = yield* engine.verify(ref)
          expect(report.ok).toBe(true)
          expect(report.entries).toBe(4)
          expect(report.currencies).toEqual([
            { currencyCode: "GBP", value: 40, journalSum: 40, ok: true },
            { currencyCode: "EUR", value: 40, journalSum: 40, ok: true },
          ])
        }),
      ),
    )
  })

  describe("events", () => {
    it.scoped("publishes lock granted, released, expired-and-taken-over and admin-unlock events", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const events = yield* engine.subscribe
          const ref = yield* opened()
          const first = yield* engine.lock(ref)
          yield* engine.unlock(ref, first.lock.key)
          yield* engine.lock(ref)
          yield* TestClock.adjust("120 seconds")
          yield* engine.lock(ref)
          yield* engine.unlockCustomer({ customerId: ref.customerId })
          const seen = yield* Effect.map(events.takeAll, (chunk) => [...chunk])
          expect(seen.map((e) => e._tag)).toEqual([
            "LockGranted",
            "LockReleased",
            "LockGranted",
            "LockExpiredTakenOver",
            "LockGranted",
            "AdminUnlocked",
          ])
          expect(seen.every((e) => e.holder.holderId === ref.holderId)).toBe(true)
          expect(seen[4]).toMatchObject({ _tag: "LockGranted", tookOver: true })
          expect(JSON.stringify(seen)).not.toContain(Redacted.value(first.lock.key))
        }),
      ),
    )
  })
}
