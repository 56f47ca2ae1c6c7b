/**
 * The invariant checker: silent on healthy stores (whatever a random workload did), and on
 * documents corrupted by writing straight into a memory `Storage` it names each broken invariant.
 */
import { CreditEngine, type HolderRef, type LockKeyInput } from "@creditlock/core"
import { type CommitRequest, type JournalEntry, Storage, type StoredHolder } from "@creditlock/core/storage"
import { MemoryStorage } from "@creditlock/memory"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import fc from "fast-check"
import { Invariants, TestEngine } from "../src/index.js"

const engine = CreditEngine.layer().pipe(Layer.provideMerge(MemoryStorage.layer()))

const ref = (n: number): HolderRef => ({ customerId: "cus", holderType: "contracts", holderId: `sub-${n}` })
const gbp = (value: number) => [{ type: "monetary" as const, changeAmount: { currencyCode: "GBP", value } }]

type Step =
  | { readonly op: "modify"; readonly holder: number; readonly value: number; readonly reference: string | null }
  | { readonly op: "limit"; readonly holder: number; readonly limit: number }
  | { readonly op: "relock"; readonly holder: number }

/** A random workload on three holders: top-ups, debits (some refused), references, limits, locks. */
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant("modify" as const),
    holder: fc.nat(2),
    value: fc.integer({ min: -800, max: 1000 }).filter((v) => v !== 0),
    reference: fc.option(fc.constantFrom("a", "b", "c")),
  }),
  fc.record({ op: fc.constant("limit" as const), holder: fc.nat(2), limit: fc.integer({ min: 0, max: 500 }) }),
  fc.record({ op: fc.constant("relock" as const), holder: fc.nat(2) }),
)

const workload = (steps: ReadonlyArray<Step>) =>
  Effect.gen(function* () {
    const credit = yield* CreditEngine
    const keys = new Map<number, LockKeyInput>()
    for (const n of [0, 1, 2]) {
      yield* credit.openHolder(ref(n), { balanceGroupId: `bg-${n}` })
      keys.set(n, (yield* credit.lock(ref(n))).lock.key)
    }
    for (const s of steps) {
      const key = keys.get(s.holder) ?? ""
      if (s.op === "modify") {
        const request = {
          reason: `step ${s.value}`,
          modifications: gbp(s.value),
          ...(s.reference === null ? {} : { reference: s.reference }),
        }
        // Refusals (lack of credit, a reference reused for another request) are part of the workload.
        yield* Effect.either(credit.modify(ref(s.holder), key, request))
      } else if (s.op === "limit") {
        yield* credit.setCreditLimits(`bg-${s.holder}`, { resourceId: 826, limit: s.limit / 100 })
      } else {
        yield* credit.unlock(ref(s.holder), key)
        keys.set(s.holder, (yield* credit.lock(ref(s.holder))).lock.key)
      }
    }
    return yield* Invariants.check([ref(0), ref(1), ref(2)])
  })

/** The holder as stored, and its journal. */
const read = (holder: HolderRef) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const stored = Option.getOrThrow(yield* storage.load(holder))
    const journal = yield* storage.journal(holder, { afterSeq: 0, limit: 1000 })
    return { stored, journal }
  })

/** Writes straight into the store, past the engine: the next document and entries of `holder`. */
const corrupt = (holder: HolderRef, change: (stored: StoredHolder) => Pick<CommitRequest, "document" | "entries">) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const { stored } = yield* read(holder)
    const result = yield* storage.commit({
      ref: holder,
      expected: stored.revision,
      index: [],
      claims: [],
      ...change(stored),
    })
    expect(result._tag).toBe("Committed")
  })

/** A healthy holder: opened, topped up with 1000 GBP pence under a lock, and released. */
const healthy = (holder: HolderRef) =>
  Effect.gen(function* () {
    const credit = yield* CreditEngine
    yield* credit.openHolder(holder)
    const { lock } = yield* credit.lock(holder)
    yield* credit.modify(holder, lock.key, { reason: "top-up", reference: "top-up-1", modifications: gbp(1000) })
    yield* credit.unlock(holder, lock.key)
  })

/** A modification entry appended past the engine. */
const entry = (stored: StoredHolder, fields: Partial<JournalEntry> & { readonly seq: number }): JournalEntry => ({
  id: `corrupt-${fields.seq}`,
  at: 0,
  holder: stored.document.ref,
  kind: "modification",
  reason: "written past the engine",
  changes: [],
  ...fields,
})

/** Appends `entries` (seq after the document's) with the document's balances and journalSeq moved to match. */
const append = (stored: StoredHolder, changes: ReadonlyArray<Partial<JournalEntry>>) => {
  const { document } = stored
  let value = document.balances.find((b) => b.currencyCode === "GBP")?.value ?? 0
  const entries = changes.map((fields, i) => {
    const seq = document.journalSeq + 1 + i
    const e = entry(stored, { seq, ...fields })
    for (const c of e.changes) value = c.after
    return e
  })
  return {
    document: {
      ...document,
      journalSeq: document.journalSeq + entries.length,
      balances: [{ currencyCode: "GBP", value, updatedAt: 0 }],
    },
    entries,
  }
}

const invariantsOf = (report: Invariants.InvariantReport) => report.violations.map((v) => v.invariant)

describe("a healthy store", () => {
  it.effect("has no violation after any workload of modifications, references, limits and relocks", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
          const report = await Effect.runPromise(workload(steps).pipe(Effect.provide(engine)))
          expect(report.holders).toBe(3)
          expect(report.violations).toEqual([])
          expect(report.ok).toBe(true)
        }),
        { numRuns: 100 },
      ),
    ),
  )

  it.effect("and through TestEngine.layer, whose Storage is the store itself", () =>
    Effect.gen(function* () {
      yield* healthy(ref(0))
      const report = yield* Invariants.check([ref(0)])
      expect(Invariants.format(report)).toBe("1 holder(s): every invariant holds")
    }).pipe(Effect.provide(TestEngine.layer())),
  )
})

describe("a corrupted store: each violation is named", () => {
  const cases: ReadonlyArray<{
    readonly invariant: Invariants.Invariant
    readonly what: string
    readonly corruption: (stored: StoredHolder) => Pick<CommitRequest, "document" | "entries">
  }> = [
    {
      invariant: "journal-sum",
      what: "a balance changed without a journal entry",
      corruption: (s) => ({
        document: { ...s.document, balances: s.document.balances.map((b) => ({ ...b, value: b.value + 1 })) },
        entries: [],
      }),
    },
    {
      invariant: "journal-sum",
      what: "an entry whose before is not the credit it changed",
      corruption: (s) => append(s, [{ changes: [{ currencyCode: "GBP", delta: 10, before: 500, after: 510 }] }]),
    },
    {
      invariant: "seq-gap",
      what: "an entry numbered past a gap",
      corruption: (s) => {
        const next = append(s, [{}])
        const [only] = next.entries
        return {
          document: { ...next.document, journalSeq: s.document.journalSeq + 2 },
          entries: only === undefined ? [] : [{ ...only, seq: s.document.journalSeq + 2 }],
        }
      },
    },
    {
      invariant: "single-live-lock",
      what: "a lock that is not the last one granted",
      corruption: (s) => ({
        document: {
          ...s.document,
          lastLockToken: 3,
          lock: { keyHash: "x", grantedAt: 0, expiresAt: Number.MAX_SAFE_INTEGER, token: 2 },
        },
        entries: [],
      }),
    },
    {
      invariant: "single-live-lock",
      what: "a modification under an older lock after one under a newer lock",
      corruption: (s) =>
        append({ ...s, document: { ...s.document, lastLockToken: 3 } }, [
          { lockToken: 3, changes: [{ currencyCode: "GBP", delta: 1, before: 1000, after: 1001 }] },
          { lockToken: 2, changes: [{ currencyCode: "GBP", delta: 1, before: 1001, after: 1002 }] },
        ]),
    },
    {
      invariant: "below-minimum",
      what: "a debit below 0 with no credit limit",
      corruption: (s) => append(s, [{ changes: [{ currencyCode: "GBP", delta: -1500, before: 1000, after: -500 }] }]),
    },
    {
      invariant: "reference-reused",
      what: "one reference applied twice",
      corruption: (s) =>
        append(s, [
          { reference: "top-up-1", changes: [{ currencyCode: "GBP", delta: 1000, before: 1000, after: 2000 }] },
        ]),
    },
  ]

  for (const { invariant, what, corruption } of cases) {
    it.effect(`${invariant}: ${what}`, () =>
      Effect.gen(function* () {
        const holder = ref(1)
        yield* healthy(holder)
        yield* corrupt(holder, corruption)
        const report = yield* Invariants.check([holder])
        expect(report.ok).toBe(false)
        // One corruption may break the invariant in more than one place; none other is reported.
        expect([...new Set(invariantsOf(report))]).toEqual([invariant])
        expect(report.violations.every((v) => v.holder === holder || v.holder.holderId === holder.holderId)).toBe(true)
        expect(Invariants.format(report)).toContain(`- ${invariant} on cus/contracts/sub-1: `)
      }).pipe(Effect.provide(engine)),
    )
  }

  it.effect("below-minimum judges each debit by the limits in force at that moment", () =>
    Effect.gen(function* () {
      const credit = yield* CreditEngine
      const holder = ref(3)
      yield* credit.openHolder(holder, { balanceGroupId: "bg-3" })
      const { lock } = yield* credit.lock(holder)
      yield* credit.setCreditLimits("bg-3", { resourceId: 826, limit: "10.00" })
      yield* credit.modify(holder, lock.key, { reason: "bill", modifications: gbp(-1000) })
      // Lowering the limit afterwards does not make the earlier debit a violation.
      yield* credit.setCreditLimits("bg-3", { resourceId: 826, limit: "0" })
      expect((yield* Invariants.check([holder])).violations).toEqual([])
      // A debit past the limit in force, written past the engine, is one.
      yield* corrupt(holder, (s) =>
        append(s, [
          { at: s.document.openedAt, changes: [{ currencyCode: "GBP", delta: -1, before: -1000, after: -1001 }] },
        ]),
      )
      const report = yield* Invariants.check([holder])
      expect(invariantsOf(report)).toEqual(["below-minimum"])
      expect(report.violations[0]?.detail).toContain("below the minimum 0")
    }).pipe(Effect.provide(engine)),
  )

  it.effect("holder-missing: a holder that was never opened", () =>
    Effect.gen(function* () {
      yield* healthy(ref(1))
      const report = yield* Invariants.check([ref(1), ref(9)])
      expect(report.holders).toBe(2)
      expect(report.violations).toEqual([
        { invariant: "holder-missing", holder: ref(9), detail: "cus/contracts/sub-9 was never opened" },
      ])
    }).pipe(Effect.provide(engine)),
  )

  it.effect("several violations on several holders are all named", () =>
    Effect.gen(function* () {
      yield* healthy(ref(1))
      yield* healthy(ref(2))
      yield* corrupt(ref(1), (s) =>
        append(s, [
          { reference: "top-up-1", changes: [{ currencyCode: "GBP", delta: -1500, before: 1000, after: -500 }] },
        ]),
      )
      yield* corrupt(ref(2), (s) => ({
        document: { ...s.document, journalSeq: s.document.journalSeq + 1 },
        entries: [],
      }))
      const report = yield* Invariants.check([ref(1), ref(2)])
      expect(report.violations.map((v) => [v.holder.holderId, v.invariant])).toEqual([
        ["sub-1", "below-minimum"],
        ["sub-1", "reference-reused"],
        ["sub-2", "seq-gap"],
      ])
    }).pipe(Effect.provide(engine)),
  )
})
