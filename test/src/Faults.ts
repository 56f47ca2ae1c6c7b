/**
 * Conformance: failures between the engine and the store. A write ends applied, not applied, or
 * unknown — never reported as the wrong one. A commit whose reply is lost is settled by its
 * witness: an applied write is answered as applied (even when other commits came in between),
 * one proven not to land is planned again, and a refusal is only answered once no lost commit can
 * still land.
 *
 * @module
 */
import { CreditEngine, type CreditEngineOptions } from "@creditlock/core"
import {
  type CommitRequest,
  type HolderRef,
  holderKey,
  OutcomeUnknown,
  Storage,
  StorageUnavailable,
} from "@creditlock/core/storage"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Layer, Option, Queue, type Scope, TestClock } from "effect"
import { change, contract, creditValue, overriding, type StorageLayer, snapshot } from "./Harness.js"

/**
 * What the wrapped storage does to the next commit:
 * - `lost`: applies it, runs `between` (another writer's commit, on a second engine), then fails as if
 *   the reply were lost;
 * - `unsent`: fails with OutcomeUnknown without applying it (the request never arrived), after
 *   running `between` if set;
 * - `held`: keeps it to be applied later by `landLate` (a request still in flight), and fails;
 * - `refused`: fails with StorageUnavailable without applying it.
 */
type Fault = "none" | "lost" | "unsent" | "held" | "refused"

interface Control {
  next: Fault
  /** Run after a `lost` commit applied and before its failure is answered. */
  between: Effect.Effect<unknown, unknown, CreditEngine> | null
  /** Loads that fail (StorageUnavailable) after the next fault, as while a client reconnects. */
  failLoads: number
  /** Loads still to fail now (armed by a fault from `failLoads`). */
  failing: number
  /** Commits of this holder fail with StorageUnavailable (not applied). */
  refuseHolder: HolderRef | null
  /**
   * Commits of this holder apply and lose their reply, and from then on loads of it fail (so the
   * outcome cannot be proven): unknown.
   */
  loseHolder: HolderRef | null
  /** Whether a commit of `loseHolder` landed (its loads fail from then on). */
  lostLanded: boolean
  /**
   * Commits that write the holder's stored document back unchanged (the engine's fence, which
   * proves that no lost commit can land) answer Conflict, nothing written: a store that keeps
   * refusing for races of its own.
   */
  fenceConflicts: boolean
  held: CommitRequest | null
  /** The held commit lands just before the next commit is applied (a late arrival). */
  landHeldBeforeNext: boolean
  /** Every commit of this holder: another writer commits first, then the reply is lost unsent. */
  churn: HolderRef | null
  commits: number
}

const lostReply = () => new OutcomeUnknown({ detail: "connection reset before the reply" })

const faulty = (control: Control, engine: () => CreditEngine["Type"]) =>
  overriding((inner) => ({
    load: (ref) =>
      Effect.suspend(() => {
        if (control.failing > 0) {
          control.failing -= 1
          return Effect.fail(new StorageUnavailable({ detail: "reconnecting" }))
        }
        if (control.lostLanded && control.loseHolder !== null && holderKey(control.loseHolder) === holderKey(ref)) {
          return Effect.fail(new StorageUnavailable({ detail: "reconnecting" }))
        }
        return inner.load(ref)
      }),
    commit: (request) =>
      Effect.suspend(() => {
        const fault = control.next
        control.next = "none"
        if (fault !== "none") {
          control.failing = control.failLoads
          control.failLoads = 0
        }
        control.commits += 1
        if (control.refuseHolder !== null && holderKey(control.refuseHolder) === holderKey(request.ref)) {
          return Effect.fail(new StorageUnavailable({ detail: "refused" }))
        }
        if (control.loseHolder !== null && holderKey(control.loseHolder) === holderKey(request.ref)) {
          return Effect.zipRight(
            Effect.tap(inner.commit(request), () =>
              Effect.sync(() => {
                control.lostLanded = true
              }),
            ),
            Effect.fail(lostReply()),
          )
        }
        if (control.fenceConflicts && request.entries.length === 0 && request.expected !== "absent") {
          const expected = request.expected
          return Effect.flatMap(inner.load(request.ref), (stored) =>
            Option.isSome(stored) &&
            stored.value.revision === expected &&
            JSON.stringify(stored.value.document) === JSON.stringify(request.document)
              ? Effect.succeed({ _tag: "Conflict" } as const)
              : inner.commit(request),
          )
        }
        if (control.churn !== null && holderKey(control.churn) === holderKey(request.ref)) {
          return Effect.gen(function* () {
            const other = Option.getOrThrow(yield* inner.load(request.ref))
            yield* inner.commit({
              ...request,
              expected: other.revision,
              document: other.document,
              entries: [],
              index: [],
              claims: [],
            })
            return yield* lostReply()
          })
        }
        if (control.landHeldBeforeNext && control.held !== null) {
          const late = control.held
          control.landHeldBeforeNext = false
          control.held = null
          return Effect.zipRight(inner.commit(late), inner.commit(request))
        }
        switch (fault) {
          case "none":
            return inner.commit(request)
          case "refused":
            return Effect.fail(new StorageUnavailable({ detail: "refused" }))
          case "unsent":
            return Effect.gen(function* () {
              const between = control.between
              control.between = null
              if (between !== null) yield* Effect.orDie(Effect.provideService(between, CreditEngine, engine()))
              return yield* lostReply()
            })
          case "held":
            control.held = request
            return Effect.fail(lostReply())
          case "lost":
            return Effect.gen(function* () {
              yield* inner.commit(request)
              const between = control.between
              control.between = null
              if (between !== null) yield* Effect.orDie(Effect.provideService(between, CreditEngine, engine()))
              return yield* lostReply()
            })
        }
      }),
  }))

export const faultTests = (storage: StorageLayer) => {
  const withFaults = <A, E>(
    body: (control: Control) => Effect.Effect<A, E, CreditEngine | Storage | Scope.Scope>,
    options: CreditEngineOptions = {},
  ) =>
    Effect.gen(function* () {
      const control: Control = {
        next: "none",
        between: null,
        failLoads: 0,
        failing: 0,
        refuseHolder: null,
        loseHolder: null,
        lostLanded: false,
        fenceConflicts: false,
        held: null,
        landHeldBeforeNext: false,
        churn: null,
        commits: 0,
      }
      // `between` runs on another engine over the same storage: another writer, as another process would be.
      let other: CreditEngine["Type"] | undefined
      const engineLayer = CreditEngine.layer({ settleTimeout: "2 seconds", ...options }).pipe(
        Layer.provide(faulty(control, () => other as CreditEngine["Type"])),
      )
      const layer = Layer.provideMerge(engineLayer, storage)
      return yield* Effect.gen(function* () {
        other = Context.get(yield* Layer.build(CreditEngine.layer()), CreditEngine)
        return yield* body(control)
      }).pipe(Effect.provide(layer), Effect.scoped)
    })

  /** Opens a holder and locks it; returns its ref and key. */
  const lockedHolder = Effect.gen(function* () {
    const engine = yield* CreditEngine
    const ref = contract()
    yield* engine.openHolder(ref, { balanceGroupId: `bg-${ref.holderId}` })
    const { lock } = yield* engine.lock(ref)
    return { ref, key: lock.key }
  })

  const entriesWith = (ref: HolderRef, reference: string) =>
    Effect.map(snapshot(ref), (s) => s.journal.filter((e) => e.reference === reference))

  describe("lost commit replies", () => {
    it.effect("a modify that committed, its reply lost while another commit came in between, is applied", () =>
      withFaults((control) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* lockedHolder
          control.next = "lost"
          control.between = Effect.flatMap(CreditEngine, (e) =>
            e.setCreditLimits(`bg-${ref.holderId}`, { resourceId: 826, limit: "5.00" }),
          )
          const applied = yield* engine.modify(ref, key, change("GBP", 100, "top-up", "inv-1"))
          expect(applied.replayed).toBe(false)
          expect(applied.current.credit[0]?.amount.value).toBe(100)
          expect(yield* creditValue(ref, "GBP")).toBe(100)
          // The natural retry, with the same reference, converges to exactly once.
          const retried = yield* engine.modify(ref, key, change("GBP", 100, "top-up", "inv-1"))
          expect(retried).toMatchObject({ replayed: true, entryId: applied.entryId })
          expect(yield* creditValue(ref, "GBP")).toBe(100)
          expect(yield* entriesWith(ref, "inv-1")).toHaveLength(1)
          expect((yield* engine.verify(ref)).ok).toBe(true)
        }),
      ),
    )

    it.effect("every write whose reply was lost is answered as applied, once, with its events once", () =>
      withFaults((control) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          control.next = "lost"
          expect((yield* engine.openHolder(ref, { balanceGroupId: `bg-${ref.holderId}` })).created).toBe(true)
          const queue = yield* engine.subscribe
          control.next = "lost"
          const { lock } = yield* engine.lock(ref)
          expect((yield* snapshot(ref)).stored).toMatchObject({ _tag: "Some" })
          control.next = "lost"
          const limits = yield* engine.setCreditLimits(`bg-${ref.holderId}`, { resourceId: 826, limit: "1.00" })
          expect(limits.limits[0]?.limit).toBe(100)
          control.next = "lost"
          yield* engine.modify(ref, lock.key, change("GBP", -50, "debit"))
          control.next = "lost"
          yield* engine.unlock(ref, lock.key)
          const stored = yield* snapshot(ref)
          expect(stored.journal.map((e) => e.kind)).toEqual(["opened", "limits", "modification"])
          expect(stored.stored).toMatchObject({ _tag: "Some", value: { document: { lock: null } } })
          expect(yield* creditValue(ref, "GBP")).toBe(-50)
          const published = Chunk.toReadonlyArray(yield* Queue.takeAll(queue)).map((e) => e._tag)
          expect(published).toEqual(["LockGranted", "LockReleased"])
        }),
      ),
    )

    it.effect("a lost commit proven not to have landed is planned again and applied once", () =>
      withFaults((control) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* lockedHolder
          control.next = "unsent"
          control.failLoads = 3
          const result = yield* engine.modify(ref, key, change("GBP", 40, "r", "unsent-1"))
          expect(result.replayed).toBe(false)
          expect(yield* creditValue(ref, "GBP")).toBe(40)
          expect(yield* entriesWith(ref, "unsent-1")).toHaveLength(1)
          // Not applied, known: StorageUnavailable, nothing changed.
          control.next = "refused"
          const refused = yield* Effect.flip(engine.modify(ref, key, change("GBP", 2)))
          expect(refused._tag).toBe("StorageUnavailable")
          expect(yield* creditValue(ref, "GBP")).toBe(40)
        }),
      ),
    )

    it.effect("a commit still in flight cannot land after the engine answered: it is fenced", () =>
      withFaults((control) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const storage = yield* Storage
          // 1. Planned again at the same revision: whichever lands, the other conflicts.
          const { ref, key } = yield* lockedHolder
          control.next = "held"
          const applied = yield* engine.modify(ref, key, change("GBP", 10, "r", "held-1"))
          expect((yield* storage.commit(control.held as CommitRequest))._tag).toBe("Conflict")
          expect(yield* creditValue(ref, "GBP")).toBe(10)
          expect(applied.replayed).toBe(false)

          // 2. A refusal (the lock expired meanwhile) is answered only after the lost commit is fenced.
          control.next = "held"
          control.failLoads = 1
          const pending = yield* Effect.fork(engine.modify(ref, key, change("GBP", 5, "r", "held-2")))
          yield* TestClock.adjust("121 seconds")
          const refusal = yield* Effect.flip(pending)
          expect(refusal._tag).toBe("LockExpired")
          expect((yield* storage.commit(control.held as CommitRequest))._tag).toBe("Conflict")
          expect(yield* creditValue(ref, "GBP")).toBe(10)
          expect(yield* entriesWith(ref, "held-2")).toHaveLength(0)
        }),
      ),
    )

    it.effect("a lost commit that lands just before its fence is answered as applied, not as the refusal", () =>
      withFaults((control) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, key } = yield* lockedHolder
          control.next = "held"
          control.failLoads = 1
          const pending = yield* Effect.fork(engine.modify(ref, key, change("GBP", 100, "top-up")))
          // The lock expires, so the engine would refuse (LockExpired) — but first it must fence the
          // lost commit, and the lost commit arrives just before the fence.
          control.landHeldBeforeNext = true
          yield* TestClock.adjust("121 seconds")
          const result = yield* pending
          expect(result.replayed).toBe(false)
          expect(yield* creditValue(ref, "GBP")).toBe(100)
          expect((yield* snapshot(ref)).journal.some((e) => e.id === result.entryId)).toBe(true)
        }),
      ),
    )

    it.effect(
      "a lost lock grant whose lock is gone by the time it is read is unknown, never refused or granted twice",
      () =>
        withFaults((control) =>
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const ref = contract()
            yield* engine.openHolder(ref)
            control.next = "lost"
            // The grant lands; before its reply could be proven, an administrator releases it.
            control.between = Effect.flatMap(CreditEngine, (e) => e.unlockCustomer({ customerId: ref.customerId }))
            const error = yield* Effect.flip(engine.lock(ref))
            expect(error._tag).toBe("OutcomeUnknown")
            const stored = yield* snapshot(ref)
            expect(stored.stored).toMatchObject({ _tag: "Some", value: { document: { lock: null } } })
            expect(stored.journal.map((e) => e.kind)).toEqual(["opened", "admin-unlock"])
          }),
        ),
    )

    it.live("a call stays bounded by one settle window however often its replies are lost", () =>
      withFaults(
        (control) =>
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const { ref, key } = yield* lockedHolder
            control.churn = ref
            const error = yield* Effect.flip(engine.modify(ref, key, change("GBP", 5, "r", "churn-1")))
            expect(error._tag).toBe("OutcomeUnknown")
            control.churn = null
            expect(yield* creditValue(ref, "GBP")).toBe(0)
          }),
        { settleTimeout: "100 millis", maxAttempts: 2 },
      ),
    )

    it.live(
      "a fence the store keeps refusing (Conflict on an unchanged revision) ends in OutcomeUnknown at the settle deadline",
      () =>
        withFaults(
          (control) =>
            Effect.gen(function* () {
              const engine = yield* CreditEngine
              const { ref, key } = yield* lockedHolder
              // The modification is lost unsent while its lock runs out (nothing written, the revision
              // unchanged), so the decision on the next read is a refusal, which only a fence proves.
              control.next = "unsent"
              control.between = Effect.sleep("400 millis")
              control.fenceConflicts = true
              const started = Date.now()
              const error = yield* Effect.flip(engine.modify(ref, key, change("GBP", 5, "r", "fence-1")))
              control.fenceConflicts = false
              expect(error._tag).toBe("OutcomeUnknown")
              expect(Date.now() - started).toBeLessThan(10_000)
              expect(yield* creditValue(ref, "GBP")).toBe(0)
            }),
          { settleTimeout: "300 millis", lockTtl: "200 millis" },
        ),
    )

    it.live(
      "no proof within the settle time → OutcomeUnknown naming the entry; a retry converges to exactly once",
      () =>
        withFaults(
          (control) =>
            Effect.gen(function* () {
              const engine = yield* CreditEngine
              const { ref, key } = yield* lockedHolder
              control.next = "lost"
              control.failLoads = 1_000_000
              const unknown = yield* Effect.flip(engine.modify(ref, key, change("GBP", 7, "r", "unknown-1")))
              expect(unknown._tag).toBe("OutcomeUnknown")
              expect(unknown.status).toBe(503)
              expect(unknown).toMatchObject({ code: "OUTCOME_UNKNOWN" })
              const entryId = (unknown as OutcomeUnknown).entryId
              expect(entryId).toBeTypeOf("string")
              control.failing = 0
              const journal = (yield* snapshot(ref)).journal
              expect(journal.some((e) => e.id === entryId)).toBe(true)
              const retried = yield* engine.modify(ref, key, change("GBP", 7, "r", "unknown-1"))
              expect(retried).toMatchObject({ replayed: true, entryId })
              expect(yield* creditValue(ref, "GBP")).toBe(7)
            }),
          { settleTimeout: "150 millis" },
        ),
    )
  })

  describe("unlockCustomer part-way", () => {
    it.effect("a failure on one holder answers UnlockIncomplete; repeating releases the rest, once", () =>
      withFaults((control) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const customerId = contract().customerId
          const refs = [contract(customerId), contract(customerId), contract(customerId)]
          for (const ref of refs) {
            yield* engine.openHolder(ref)
            yield* engine.lock(ref)
          }
          const broken = refs[1] as HolderRef
          control.refuseHolder = broken
          const incomplete = yield* Effect.flip(engine.unlockCustomer({ customerId }))
          expect(incomplete._tag).toBe("UnlockIncomplete")
          if (incomplete._tag !== "UnlockIncomplete") return
          expect(incomplete.status).toBe(503)
          expect(incomplete.pending).toEqual([broken])
          expect(incomplete.unknown).toEqual([])
          expect(new Set(incomplete.released.map((r) => r.holder.holderId))).toEqual(
            new Set([refs[0]?.holderId, refs[2]?.holderId]),
          )
          const journalsBefore = yield* Effect.forEach(refs, snapshot)
          control.refuseHolder = null
          const done = yield* engine.unlockCustomer({ customerId })
          expect(done.released.map((r) => r.holder)).toEqual([broken])
          const journalsAfter = yield* Effect.forEach(refs, snapshot)
          expect(journalsAfter[0]?.journal).toEqual(journalsBefore[0]?.journal)
          expect(journalsAfter[2]?.journal).toEqual(journalsBefore[2]?.journal)
          expect(journalsAfter[1]?.journal.at(-1)?.kind).toBe("admin-unlock")
          expect((yield* engine.unlockCustomer({ customerId })).released).toEqual([])
        }),
      ),
    )

    it.live(
      "a release sent but not confirmed is listed unknown, not pending; repeating settles it and releases the rest, none twice",
      () =>
        withFaults(
          (control) =>
            Effect.gen(function* () {
              const engine = yield* CreditEngine
              const customerId = contract().customerId
              const refs = [contract(customerId), contract(customerId), contract(customerId)]
              for (const ref of refs) {
                yield* engine.openHolder(ref)
                yield* engine.lock(ref)
              }
              const refused = refs[1] as HolderRef
              const lost = refs[2] as HolderRef
              control.refuseHolder = refused
              control.loseHolder = lost
              const incomplete = yield* Effect.flip(engine.unlockCustomer({ customerId }))
              expect(incomplete._tag).toBe("UnlockIncomplete")
              if (incomplete._tag !== "UnlockIncomplete") return
              expect(incomplete.released.map((r) => r.holder)).toEqual([refs[0]])
              expect(incomplete.pending).toEqual([refused])
              expect(incomplete.unknown).toEqual([lost])
              control.refuseHolder = null
              control.loseHolder = null
              control.lostLanded = false
              // The unknown release had landed; the refused one had written nothing.
              const kinds = (ref: HolderRef) => Effect.map(snapshot(ref), (s) => s.journal.map((e) => e.kind))
              expect((yield* kinds(lost)).at(-1)).toBe("admin-unlock")
              expect((yield* kinds(refused)).at(-1)).not.toBe("admin-unlock")
              const done = yield* engine.unlockCustomer({ customerId })
              expect(done.released.map((r) => r.holder)).toEqual([refused])
              for (const ref of refs) {
                expect((yield* kinds(ref)).filter((k) => k === "admin-unlock")).toHaveLength(1)
              }
            }),
          { settleTimeout: "150 millis" },
        ),
    )
  })
}
