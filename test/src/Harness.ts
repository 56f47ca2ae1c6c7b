/**
 * Helpers shared by the conformance suite: an engine over the storage under test, fresh holder
 * names, and snapshots of a holder's stored state to prove that a rejected call changed nothing.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { CreditEngine, type CreditEngineOptions, type ModifyRequestInput } from "@creditlock/core"
import { type HolderRef, type JournalEntry, Storage, type StoredHolder } from "@creditlock/core/storage"
import { expect } from "@effect/vitest"
import { Effect, Either, Layer, type Option } from "effect"

/** A storage layer under test; each build should give independent state or a shared server. */
export type StorageLayer = Layer.Layer<Storage, unknown>

/** The engine and the raw storage, for tests that inspect what was persisted. */
export const engineWith = (storage: StorageLayer, options: CreditEngineOptions = {}) =>
  CreditEngine.layer(options).pipe(Layer.provideMerge(storage))

/**
 * A `Storage` over the one in context with some of its methods replaced: `overrides` receives the
 * storage it wraps and returns the methods it changes (the rest pass through). For tests that
 * count, delay or fail calls.
 */
export const overriding = (
  overrides: (inner: Storage["Type"]) => Partial<Storage["Type"]>,
): Layer.Layer<Storage, never, Storage> =>
  Layer.effect(
    Storage,
    Effect.map(Storage, (inner) => Storage.of({ ...inner, ...overrides(inner) })),
  )

/** `storage` with some of its methods replaced, as {@link overriding} says. */
export const wrapStorage = <E>(
  storage: Layer.Layer<Storage, E>,
  overrides: (inner: Storage["Type"]) => Partial<Storage["Type"]>,
): Layer.Layer<Storage, E> => Layer.provide(overriding(overrides), storage)

/** A customer id no other test uses, so tests can share one backend. */
export const freshCustomer = (): string => `cust-${randomUUID()}`

/** A contract (subscription) holder of a fresh customer. */
export const contract = (customerId = freshCustomer(), holderId = `sub-${randomUUID()}`): HolderRef => ({
  customerId,
  holderType: "contracts",
  holderId,
})

/** The customer-level holder of a customer. */
export const customerHolder = (customerId = freshCustomer()): HolderRef => ({
  customerId,
  holderType: "customers",
  holderId: customerId,
})

/** A one-currency modify request. */
export const change = (
  currencyCode: string,
  value: number,
  reason = "test",
  reference?: string,
): ModifyRequestInput => ({
  reason,
  modifications: [{ type: "monetary", changeAmount: { currencyCode, value } }],
  ...(reference === undefined ? {} : { reference }),
})

/** Everything stored for a holder: its document and revision, and its whole journal. */
export interface Snapshot {
  readonly stored: Option.Option<StoredHolder>
  readonly journal: ReadonlyArray<JournalEntry>
}

/** Reads a holder's stored state straight from the storage. */
export const snapshot = (ref: HolderRef): Effect.Effect<Snapshot, unknown, Storage> =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const stored = yield* storage.load(ref)
    const journal = yield* storage.journal(ref, { afterSeq: 0, limit: 100_000 })
    return { stored, journal }
  })

/**
 * Runs `effect`, expects it to fail with the error tagged `tag`, and checks that the stored state
 * of every holder in `refs` is exactly what it was before. Returns the error.
 */
export const expectRejected = <A, E extends { readonly _tag: string }, R>(
  refs: HolderRef | ReadonlyArray<HolderRef>,
  tag: E["_tag"],
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<E, unknown, R | Storage> =>
  Effect.gen(function* () {
    const all = Array.isArray(refs) ? (refs as ReadonlyArray<HolderRef>) : [refs as HolderRef]
    const before = yield* Effect.forEach(all, snapshot)
    const result = yield* Effect.either(effect)
    if (Either.isRight(result)) {
      return yield* Effect.dieMessage(`expected ${tag}, but the call succeeded`)
    }
    expect(result.left._tag).toBe(tag)
    const after = yield* Effect.forEach(all, snapshot)
    expect(after).toEqual(before)
    return result.left
  })

/** The current value of one currency (0 when the holder has no entry for it). */
export const creditValue = (ref: HolderRef, currencyCode: string) =>
  Effect.map(
    Effect.flatMap(CreditEngine, (e) => e.getCredit(ref)),
    (view) => view.current.credit.find((c) => c.amount.currencyCode === currencyCode)?.amount.value ?? 0,
  )
