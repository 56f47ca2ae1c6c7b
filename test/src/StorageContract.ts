/**
 * Conformance at the adapter level: these tests call the `Storage` service directly, with no
 * engine in between, so they see what an adapter itself promises — a commit is one compare-and-set
 * that writes its document, every journal entry, its index keys and its claims, or nothing; it
 * answers the new revision; a balance-group alias has one claimant for good.
 *
 * Every test uses fresh customer ids, so a layer over a shared server works. Lookups of `customer`,
 * `subscription` and `order` keys may answer a stale candidate (the contract of `Storage.lookup`
 * allows it for adapters that write cross-slot pointers first); where a test proves that nothing
 * was written it tolerates exactly that — the committing holder newly listed under a key — and
 * nothing else. Balance-group lookups are exact.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import {
  type CommitRequest,
  type CommitResult,
  type EntrySelector,
  type HolderDocument,
  type HolderRef,
  type IndexKey,
  type JournalEntry,
  type LookupKey,
  Storage,
  type StoredHolder,
} from "@creditlock/core/storage"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { contract, type StorageLayer } from "./Harness.js"

/** The instant every test document and entry is stamped with (epoch ms); adapters never read it. */
const AT = Date.UTC(2026, 0, 1)

/** The index keys of a holder itself: its customer and, for a contract, its subscription. */
const holderKeys = (ref: HolderRef): ReadonlyArray<IndexKey> => [
  { kind: "customer", value: ref.customerId },
  ...(ref.holderType === "contracts" ? [{ kind: "subscription" as const, value: ref.holderId }] : []),
]

/** The `order` keys of journal entries: each id and each reference. */
const orderKeys = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<IndexKey> =>
  entries.flatMap((e) => [
    { kind: "order" as const, value: e.id },
    ...(e.reference === undefined ? [] : [{ kind: "order" as const, value: e.reference }]),
  ])

/** Finds each entry by id and, when it has one, by reference. */
const selectorsOf = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<EntrySelector> =>
  entries.flatMap((e) => [{ id: e.id }, ...(e.reference === undefined ? [] : [{ reference: e.reference }])])

/**
 * Appends `count` GBP credits to a document: valid entries whose `seq` continues the journal and
 * whose changes and balances agree with the next document, each with a reference.
 */
const grow = (
  document: HolderDocument,
  count: number,
): { readonly document: HolderDocument; readonly entries: ReadonlyArray<JournalEntry> } => {
  let value = document.balances.find((b) => b.currencyCode === "GBP")?.value ?? 0
  const entries: Array<JournalEntry> = []
  for (let i = 1; i <= count; i++) {
    const seq = document.journalSeq + i
    const delta = 10 * seq
    const at = AT + seq
    entries.push({
      id: randomUUID(),
      seq,
      at,
      holder: document.ref,
      kind: "modification",
      reason: `credit ${seq}`,
      reference: `ref-${randomUUID()}`,
      changes: [{ currencyCode: "GBP", delta, before: value, after: value + delta }],
      balances: [{ currencyCode: "GBP", value: value + delta, updatedAt: at }],
    })
    value += delta
  }
  const last = entries.at(-1)
  return {
    document:
      last === undefined
        ? document
        : {
            ...document,
            journalSeq: last.seq,
            balances: [{ currencyCode: "GBP", value, updatedAt: last.at }],
          },
    entries,
  }
}

/**
 * The commit that creates a holder: its "opened" entry (seq 1) and `modifications` more entries,
 * its own index keys and the order keys of its entries, and `alias` as its claim (the document
 * names it, or `null` without one).
 */
const opening = (
  ref: HolderRef,
  options: { readonly alias?: string; readonly modifications?: number } = {},
): CommitRequest => {
  const opened: HolderDocument = {
    ref,
    balanceGroupId: options.alias ?? null,
    openedAt: AT,
    balances: [],
    lock: null,
    journalSeq: 1,
  }
  const first: JournalEntry = { id: randomUUID(), seq: 1, at: AT, holder: ref, kind: "opened", changes: [] }
  const { document, entries } = grow(opened, options.modifications ?? 0)
  const all = [first, ...entries]
  return {
    ref,
    expected: "absent",
    document,
    entries: all,
    index: [...holderKeys(ref), ...orderKeys(all)],
    claims: options.alias === undefined ? [] : [options.alias],
  }
}

/** The commit that appends `count` entries to a stored holder, expecting its revision. */
const appending = (stored: StoredHolder, count: number, claims: ReadonlyArray<string> = []): CommitRequest => {
  const { document, entries } = grow(stored.document, count)
  return { ref: document.ref, expected: stored.revision, document, entries, index: orderKeys(entries), claims }
}

/** Loads a holder that must exist. */
const loaded = (ref: HolderRef) =>
  Effect.flatMap(Storage, (storage) => storage.load(ref)).pipe(
    Effect.map((stored) => {
      expect(Option.isSome(stored), "the holder was stored").toBe(true)
      return Option.getOrThrow(stored)
    }),
  )

/** Commits, expecting `Committed` with `revision`. */
const committed = (request: CommitRequest, revision: number) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const result = yield* storage.commit(request)
    expect(result).toEqual({ _tag: "Committed", revision })
    return result
  })

/** What the storage holds for a holder: document and revision, the whole journal, chosen entries. */
const holderState = (ref: HolderRef, selectors: ReadonlyArray<EntrySelector>) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    return {
      stored: yield* storage.load(ref),
      journal: yield* storage.journal(ref, { afterSeq: 0, limit: 100_000 }),
      found: yield* Effect.forEach(selectors, (selector) => storage.findEntry(ref, selector)),
    }
  })

const byKey = (refs: ReadonlyArray<HolderRef>): ReadonlyArray<string> =>
  refs.map((r) => `${r.customerId}/${r.holderType}/${r.holderId}`).sort()

/** The holders each key looks up, sorted, to compare before and after. */
const lookups = (keys: ReadonlyArray<LookupKey>) =>
  Effect.flatMap(Storage, (storage) =>
    Effect.forEach(keys, (key) => Effect.map(storage.lookup(key), (refs) => ({ key, holders: byKey(refs) }))),
  )

/**
 * Checks that a commit of `ref` that answered something other than `Committed` changed no lookup:
 * each key answers what it answered before — or, for a non-balance-group key, that plus `ref`
 * itself, the one stale candidate `Storage.lookup` allows.
 */
const expectLookupsUnchanged = (
  ref: HolderRef,
  before: ReadonlyArray<{ readonly key: LookupKey; readonly holders: ReadonlyArray<string> }>,
  after: ReadonlyArray<{ readonly key: LookupKey; readonly holders: ReadonlyArray<string> }>,
) => {
  const self = byKey([ref])[0] ?? ""
  after.forEach(({ key, holders }, i) => {
    const previous = before[i]?.holders ?? []
    const stale = [...previous, self].sort()
    const allowed = key.kind !== "balanceGroup" && !previous.includes(self) && holders.join() === stale.join()
    if (!allowed) expect(holders, `lookup ${key.kind}:${key.value}`).toEqual(previous)
  })
}

/** Everything a commit request touches, for proving that it wrote nothing. */
const touched = (request: CommitRequest): ReadonlyArray<LookupKey> => [
  ...request.index,
  ...request.claims.map((value) => ({ kind: "balanceGroup" as const, value })),
]

/**
 * Sends `request`, expects the answer `tag` (`Conflict` or `Claimed`), and checks that nothing of
 * it was written: the holder's document, revision and journal, the request's entries, its index
 * keys and its claims are all as they were. Returns the answer.
 */
const expectNothingWritten = (request: CommitRequest, tag: "Conflict" | "Claimed") =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const selectors = selectorsOf(request.entries)
    const keys = touched(request)
    const state = yield* holderState(request.ref, selectors)
    const indexed = yield* lookups(keys)
    const result = yield* storage.commit(request)
    expect(result._tag).toBe(tag)
    expect(yield* holderState(request.ref, selectors)).toEqual(state)
    expectLookupsUnchanged(request.ref, indexed, yield* lookups(keys))
    return result
  })

/** A balance-group alias no other test uses. */
const freshAlias = (): string => `bg-${randomUUID()}`

/**
 * Registers the adapter-level contract tests for one storage layer (built afresh for each test).
 * They call `Storage` directly; see the module comment for what they tolerate of lookups.
 */
export const storageContractTests = (storage: StorageLayer): void => {
  describe("storage contract", () => {
    it.effect("a create commit answers Committed revision 1, each update expected + 1, and load shows it", () =>
      Effect.gen(function* () {
        const ref = contract()
        const create = opening(ref)
        yield* committed(create, 1)
        expect(yield* loaded(ref)).toEqual({ revision: 1, document: create.document })
        for (const revision of [2, 3, 4]) {
          const update = appending(yield* loaded(ref), 1)
          yield* committed(update, revision)
          expect(yield* loaded(ref)).toEqual({ revision, document: update.document })
        }
      }).pipe(Effect.provide(storage)),
    )

    it.effect("a commit of several entries writes every one: paging, findEntry by id and reference, order keys", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const ref = contract()
        const create = opening(ref, { modifications: 2 })
        yield* committed(create, 1)
        const update = appending(yield* loaded(ref), 5)
        yield* committed(update, 2)
        const all = [...create.entries, ...update.entries]
        expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
        expect((yield* loaded(ref)).document.journalSeq).toBe(8)

        expect(yield* store.journal(ref, { afterSeq: 0, limit: 100 })).toEqual(all)
        const pages: Array<ReadonlyArray<JournalEntry>> = []
        for (let afterSeq = 0; afterSeq < all.length; afterSeq += 3) {
          pages.push(yield* store.journal(ref, { afterSeq, limit: 3 }))
        }
        expect(pages).toEqual([all.slice(0, 3), all.slice(3, 6), all.slice(6)])
        expect(yield* store.journal(ref, { afterSeq: 8, limit: 3 })).toEqual([])
        expect(yield* store.journal(ref, { afterSeq: 4, limit: 1 })).toEqual([all[4]])

        for (const entry of all) {
          expect(yield* store.findEntry(ref, { id: entry.id })).toEqual(Option.some(entry))
          if (entry.reference !== undefined) {
            expect(yield* store.findEntry(ref, { reference: entry.reference })).toEqual(Option.some(entry))
          }
        }
        for (const key of orderKeys(all)) expect(yield* store.lookup(key)).toEqual([ref])
        // Another holder finds none of them.
        const other = contract(ref.customerId)
        yield* committed(opening(other), 1)
        for (const selector of selectorsOf(all)) expect(yield* store.findEntry(other, selector)).toEqual(Option.none())
      }).pipe(Effect.provide(storage)),
    )

    it.effect("a conflicting commit writes nothing: document, revision, journal, entries, index keys, claims", () =>
      Effect.gen(function* () {
        const ref = contract()
        yield* committed(opening(ref, { modifications: 1 }), 1)
        const first = yield* loaded(ref)
        yield* committed(appending(first, 2), 2)
        const current = yield* loaded(ref)
        const alias = freshAlias()

        // A stale revision, a future one, and "absent" for a holder that exists.
        yield* expectNothingWritten(appending(first, 3, [alias]), "Conflict")
        yield* expectNothingWritten(appending({ ...current, revision: current.revision + 1 }, 3, [alias]), "Conflict")
        yield* expectNothingWritten({ ...opening(ref, { alias, modifications: 2 }), expected: "absent" }, "Conflict")
        // A revision for a holder that was never created.
        const never = contract()
        const ghost = opening(never, { alias, modifications: 2 })
        yield* expectNothingWritten({ ...ghost, expected: 1 }, "Conflict")
        expect(yield* Effect.flatMap(Storage, (s) => s.load(never))).toEqual(Option.none())

        // The alias is still free, and the holder still takes the right revision.
        yield* committed(appending(yield* loaded(ref), 1, [alias]), 3)
        expect(yield* Effect.flatMap(Storage, (s) => s.lookup({ kind: "balanceGroup", value: alias }))).toEqual([ref])
      }).pipe(Effect.provide(storage)),
    )

    it.effect("a holder created without a claim has no alias, not even its holder id", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const ref = contract()
        yield* committed(opening(ref), 1)
        expect((yield* loaded(ref)).document.balanceGroupId).toBeNull()
        expect(yield* store.lookup({ kind: "balanceGroup", value: ref.holderId })).toEqual([])
        expect(yield* store.lookup({ kind: "balanceGroup", value: ref.customerId })).toEqual([])
      }).pipe(Effect.provide(storage)),
    )

    it.effect("a taken alias answers Claimed with its holder, and nothing of the claiming commit is written", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const owner = contract()
        const alias = freshAlias()
        yield* committed(opening(owner, { alias }), 1)
        const bg = { kind: "balanceGroup" as const, value: alias }
        expect(yield* store.lookup(bg)).toEqual([owner])

        // Another customer's new holder, with the same holder id: not even the holder is created.
        const squatter = contract(undefined, owner.holderId)
        const claimed = yield* expectNothingWritten(opening(squatter, { alias, modifications: 2 }), "Claimed")
        expect(claimed).toEqual({ _tag: "Claimed", alias, holder: owner })
        expect(yield* store.load(squatter)).toEqual(Option.none())

        // An existing holder claiming it together with a free alias: neither is recorded.
        const other = contract(owner.customerId)
        yield* committed(opening(other), 1)
        const free = freshAlias()
        const both = appending(yield* loaded(other), 2, [free, alias])
        const answer = yield* expectNothingWritten(
          { ...both, document: { ...both.document, balanceGroupId: alias } },
          "Claimed",
        )
        expect(answer).toEqual({ _tag: "Claimed", alias, holder: owner })
        expect(yield* store.lookup({ kind: "balanceGroup", value: free })).toEqual([])
        expect(yield* store.lookup(bg)).toEqual([owner])
        expect(yield* loaded(other)).toEqual({ revision: 1, document: opening(other).document })
      }).pipe(Effect.provide(storage)),
    )

    it.effect("claiming an alias the holder holds already is a no-op; it can add another", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const ref = contract()
        const alias = freshAlias()
        yield* committed(opening(ref, { alias }), 1)
        yield* committed(appending(yield* loaded(ref), 1, [alias]), 2)
        yield* committed(appending(yield* loaded(ref), 1, [alias, alias]), 3)
        expect(yield* store.lookup({ kind: "balanceGroup", value: alias })).toEqual([ref])
        const second = freshAlias()
        yield* committed(appending(yield* loaded(ref), 1, [alias, second]), 4)
        expect(yield* store.lookup({ kind: "balanceGroup", value: second })).toEqual([ref])
        expect(yield* store.lookup({ kind: "balanceGroup", value: alias })).toEqual([ref])
        expect((yield* store.journal(ref, { afterSeq: 0, limit: 100 })).map((e) => e.seq)).toEqual([1, 2, 3, 4])
      }).pipe(Effect.provide(storage)),
    )

    it.effect("16 fibers opening 16 holders that claim one new alias at once: exactly one claims it", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const alias = freshAlias()
        const requests = Array.from({ length: 16 }, () => opening(contract(), { alias }))
        const results: ReadonlyArray<CommitResult> = yield* Effect.all(
          requests.map((request) => store.commit(request)),
          { concurrency: "unbounded" },
        )
        const winners = requests.filter((_, i) => results[i]?._tag === "Committed")
        expect(winners).toHaveLength(1)
        const winner = winners[0]?.ref
        results.forEach((result) => {
          if (result._tag === "Committed") expect(result.revision).toBe(1)
          else expect(result).toEqual({ _tag: "Claimed", alias, holder: winner })
        })
        expect(yield* store.lookup({ kind: "balanceGroup", value: alias })).toEqual([winner])
        for (const request of requests) {
          const stored = yield* store.load(request.ref)
          expect(Option.isSome(stored)).toBe(request.ref === winner)
        }
      }).pipe(Effect.provide(storage)),
    )

    it.effect("committed index keys are found by lookup, added to and never replaced, without duplicates", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const ref = contract()
        const create = opening(ref, { modifications: 1 })
        yield* committed(create, 1)
        for (const key of create.index) expect(yield* store.lookup(key)).toEqual([ref])

        const sibling = contract(ref.customerId)
        const next = appending(yield* loaded(ref), 2)
        // The holder's own keys again: already indexed, they must not be listed twice.
        yield* committed({ ...next, index: [...next.index, ...holderKeys(ref), ...holderKeys(ref)] }, 2)
        yield* committed(opening(sibling), 1)
        for (const key of [...create.index.filter((k) => k.kind !== "customer"), ...next.index]) {
          expect(yield* store.lookup(key)).toEqual([ref])
        }
        expect(byKey(yield* store.lookup({ kind: "customer", value: ref.customerId }))).toEqual(byKey([ref, sibling]))
        expect(yield* store.lookup({ kind: "subscription", value: sibling.holderId })).toEqual([sibling])
        expect(yield* store.lookup({ kind: "order", value: `never-${randomUUID()}` })).toEqual([])
      }).pipe(Effect.provide(storage)),
    )

    it.effect("the same commit request sent twice is applied once", () =>
      Effect.gen(function* () {
        const store = yield* Storage
        const ref = contract()
        const alias = freshAlias()
        const once = (request: CommitRequest, revision: number) =>
          Effect.gen(function* () {
            yield* committed(request, revision)
            const again = yield* store.commit(request)
            // A resend may be recognised (Committed, same revision) or refused; never applied again.
            if (again._tag !== "Conflict") expect(again).toEqual({ _tag: "Committed", revision })
            expect((yield* loaded(ref)).revision).toBe(revision)
          })
        const create = opening(ref, { alias, modifications: 1 })
        yield* once(create, 1)
        const update = appending(yield* loaded(ref), 3)
        yield* once(update, 2)
        expect(yield* loaded(ref)).toEqual({ revision: 2, document: update.document })
        expect(yield* store.journal(ref, { afterSeq: 0, limit: 100 })).toEqual([...create.entries, ...update.entries])
        expect(yield* store.lookup({ kind: "balanceGroup", value: alias })).toEqual([ref])
      }).pipe(Effect.provide(storage)),
    )

    it.effect(
      "a commit with an entry that cannot be stored (an id another holder used) is applied whole or not at all",
      () =>
        Effect.gen(function* () {
          const store = yield* Storage
          const first = contract()
          const firstCreate = opening(first, { modifications: 1 })
          yield* committed(firstCreate, 1)
          const taken = firstCreate.entries[1]
          if (taken === undefined) return yield* Effect.dieMessage("the first holder has no modification entry")
          const firstState = yield* holderState(first, selectorsOf(firstCreate.entries))

          const second = contract()
          yield* committed(opening(second, { modifications: 1 }), 1)
          const before = yield* loaded(second)
          const alias = freshAlias()
          const planned = appending(before, 3, [alias])
          // The last of three entries reuses the first holder's entry id: the first two must not
          // land without it, nor the document without any of them.
          const entries = planned.entries.map((e, i) => (i === 2 ? { ...e, id: taken.id } : e))
          const request: CommitRequest = { ...planned, entries, index: orderKeys(entries) }
          const selectors = selectorsOf(entries)
          const keys = touched(request)
          const state = yield* holderState(second, selectors)
          const indexed = yield* lookups(keys)

          const result = yield* Effect.either(store.commit(request))
          const after = yield* loaded(second)
          if (after.revision === before.revision) {
            // Not applied: the answer must not claim it was, and nothing of it is visible.
            if (Either.isRight(result)) expect(result.right._tag).not.toBe("Committed")
            else expect(["StorageUnavailable", "OutcomeUnknown"]).toContain(result.left._tag)
            expect(yield* holderState(second, selectors)).toEqual(state)
            expectLookupsUnchanged(second, indexed, yield* lookups(keys))
          } else {
            // Applied: all of it.
            if (Either.isRight(result))
              expect(result.right).toEqual({ _tag: "Committed", revision: before.revision + 1 })
            else expect(result.left._tag).toBe("OutcomeUnknown")
            expect(after).toEqual({ revision: before.revision + 1, document: request.document })
            const journal = yield* store.journal(second, { afterSeq: 0, limit: 100 })
            expect(journal.slice(-3)).toEqual(entries)
            expect(journal.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
            for (const entry of entries) {
              expect(yield* store.findEntry(second, { id: entry.id })).toEqual(Option.some(entry))
            }
            expect(yield* store.lookup({ kind: "balanceGroup", value: alias })).toEqual([second])
          }
          // The first holder is untouched either way.
          expect(yield* holderState(first, selectorsOf(firstCreate.entries))).toEqual(firstState)
        }).pipe(Effect.provide(storage)),
    )
  })
}
