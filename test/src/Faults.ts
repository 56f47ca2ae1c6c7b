/**
 * Conformance: failures between the engine and the store. A commit whose reply is lost may have
 * been applied; the engine must then report what really happened, never a success that did not
 * commit nor a failure that did.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { CreditEngine, Storage, StorageUnavailable } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { change, contract, creditValue, type StorageLayer, snapshot } from "./Harness.js"

type Mode = "ok" | "fail-before" | "fail-after" | "fail-twin"

/** Wraps the storage so the next commit can fail before it reaches the store, or after it applied. */
const faulty = (mode: Ref.Ref<Mode>) =>
  Layer.effect(
    Storage,
    Effect.map(Storage, (inner) =>
      Storage.of({
        ...inner,
        commit: (request) =>
          Effect.flatMap(Ref.getAndSet(mode, "ok"), (m) => {
            const lost = new StorageUnavailable({ detail: "connection reset" })
            if (m === "fail-before") return Effect.fail(lost)
            if (m === "fail-after") return Effect.zipRight(inner.commit(request), Effect.fail(lost))
            if (m === "fail-twin") {
              // Another decision, identical but for its entry ids, commits first; ours never lands.
              const twin = { ...request, entries: request.entries.map((e) => ({ ...e, id: randomUUID() })) }
              return Effect.zipRight(inner.commit(twin), Effect.fail(lost))
            }
            return inner.commit(request)
          }),
      }),
    ),
  )

export const faultTests = (storage: StorageLayer) => {
  describe("lost commit replies", () => {
    it.effect("a commit that applied but whose reply was lost counts as committed; one that did not, fails", () =>
      Effect.gen(function* () {
        const mode = yield* Ref.make<Mode>("ok")
        const layer = Layer.provideMerge(CreditEngine.layer().pipe(Layer.provide(faulty(mode))), storage)
        yield* Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)

          yield* Ref.set(mode, "fail-before")
          const refused = yield* Effect.flip(engine.lock(ref))
          expect(refused._tag).toBe("StorageUnavailable")
          expect((yield* snapshot(ref)).stored).toMatchObject({ _tag: "Some", value: { document: { lock: null } } })

          yield* Ref.set(mode, "fail-after")
          const { lock } = yield* engine.lock(ref)
          yield* Ref.set(mode, "fail-after")
          const modified = yield* engine.modify(ref, lock.key, change("GBP", 40, "r", "lost-reply"))
          expect(modified.replayed).toBe(false)
          yield* Ref.set(mode, "fail-before")
          expect((yield* Effect.flip(engine.modify(ref, lock.key, change("GBP", 2))))._tag).toBe("StorageUnavailable")
          yield* Ref.set(mode, "fail-twin")
          expect((yield* Effect.flip(engine.modify(ref, lock.key, change("GBP", 2))))._tag).toBe("StorageUnavailable")
          yield* engine.unlock(ref, lock.key)
          expect(yield* creditValue(ref, "GBP")).toBe(42)
          expect((yield* engine.verify(ref)).ok).toBe(true)
        }).pipe(Effect.provide(layer))
      }),
    )
  })
}
