/**
 * The in-memory `Storage`: the reference adapter. State lives in maps created when the layer is
 * built, so two layers never share state, and is lost when the process ends. Each method runs
 * synchronously, which on Node's single thread makes every commit atomic.
 *
 * @module
 */
import {
  type CommitRequest,
  type CommitResult,
  type EntrySelector,
  type HolderRef,
  holderKey,
  type JournalEntry,
  type JournalRange,
  type LookupKey,
  Storage,
  type StoredHolder,
} from "@creditlock/core/storage"
import { Effect, Layer, Option } from "effect"

interface HolderState {
  stored: StoredHolder
  readonly journal: Array<JournalEntry>
  readonly byId: Map<string, JournalEntry>
  readonly byReference: Map<string, JournalEntry>
}

const indexName = (key: LookupKey): string => `${key.kind}:${key.value}`

/**
 * Builds an empty in-memory store. A commit checks the revision first (answering `Conflict`),
 * then the claims (answering `Claimed` with the first alias in `claims` another holder owns);
 * only when both pass does it write anything.
 */
export const make: Effect.Effect<Storage["Type"]> = Effect.sync(() => {
  const holders = new Map<string, HolderState>()
  const index = new Map<string, Map<string, HolderRef>>()
  /** Balance-group alias → the holder that claimed it, for good. */
  const aliases = new Map<string, HolderRef>()

  const commit = (request: CommitRequest): CommitResult => {
    const key = holderKey(request.ref)
    const current = holders.get(key)
    if ((current?.stored.revision ?? "absent") !== request.expected) return { _tag: "Conflict" }
    for (const alias of request.claims) {
      const owner = aliases.get(alias)
      if (owner !== undefined && holderKey(owner) !== key) return { _tag: "Claimed", alias, holder: owner }
    }
    // Nothing below can throw, so the whole write happens or (before this point) none of it.
    const revision = request.expected === "absent" ? 1 : request.expected + 1
    const stored = { revision, document: request.document }
    const state: HolderState = current ?? { stored, journal: [], byId: new Map(), byReference: new Map() }
    state.stored = stored
    for (const entry of request.entries) {
      state.journal.push(entry)
      state.byId.set(entry.id, entry)
      if (entry.reference !== undefined) state.byReference.set(entry.reference, entry)
    }
    holders.set(key, state)
    for (const k of request.index) {
      const name = indexName(k)
      const refs = index.get(name) ?? new Map<string, HolderRef>()
      refs.set(key, request.ref)
      index.set(name, refs)
    }
    for (const alias of request.claims) aliases.set(alias, request.ref)
    return { _tag: "Committed", revision }
  }

  const lookup = (key: LookupKey): ReadonlyArray<HolderRef> => {
    if (key.kind === "balanceGroup") {
      const owner = aliases.get(key.value)
      return owner === undefined ? [] : [owner]
    }
    return [...(index.get(indexName(key))?.values() ?? [])]
  }

  return Storage.of({
    load: (ref) => Effect.sync(() => Option.fromNullable(holders.get(holderKey(ref))?.stored)),
    commit: (request) => Effect.sync(() => commit(request)),
    lookup: (key) => Effect.sync(() => lookup(key)),
    findEntry: (ref, selector: EntrySelector) =>
      Effect.sync(() => {
        const state = holders.get(holderKey(ref))
        const map = "id" in selector ? state?.byId : state?.byReference
        return Option.fromNullable(map?.get("id" in selector ? selector.id : selector.reference))
      }),
    journal: (ref, range: JournalRange) =>
      Effect.sync(() => {
        const journal = holders.get(holderKey(ref))?.journal ?? []
        // seq n sits at position n - 1
        return journal.slice(range.afterSeq, range.afterSeq + range.limit)
      }),
    ping: Effect.void,
  })
})

/** A fresh, empty in-memory `Storage` each time the layer is built. */
export const layer = (): Layer.Layer<Storage> => Layer.effect(Storage, make)
