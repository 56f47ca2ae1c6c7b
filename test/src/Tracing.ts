/**
 * Spans: under a tracer of the caller's, every engine operation makes its span
 * (`CreditEngine.<operation>`) with its attributes, around the storage calls it makes; under
 * Effect's default tracer, whose spans go nowhere, none is made.
 *
 * @module
 */
import { CreditEngine } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Tracer } from "effect"
import { change, contract, engineWith, freshCustomer, type StorageLayer, wrapStorage } from "./Harness.js"
import { BRM_EXAMPLE } from "./Limits.js"

/** A tracer that makes the default tracer's spans and keeps them, to be inspected. */
const recordingTracer = () => {
  const base = Effect.runSync(Effect.tracer)
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = base.span(...args)
      spans.push(span)
      return span
    },
    context: base.context,
  })
  return { tracer, spans }
}

/** `storage`, recording the name of the span current at each `load` (or none). */
const spanAtLoad = (storage: StorageLayer) => {
  const seen: Array<string | null> = []
  const layer = wrapStorage(storage, (s) => ({
    load: (ref) =>
      Effect.flatMap(Effect.option(Effect.currentSpan), (span) => {
        seen.push(Option.match(span, { onNone: () => null, onSome: (x) => x.name }))
        return s.load(ref)
      }),
  }))
  return { layer, seen }
}

export const tracingTests = (storage: StorageLayer) =>
  describe("tracing", () => {
    it.effect("under a tracer provided for the calls, every operation makes its span with its attributes", () => {
      const { tracer, spans } = recordingTracer()
      const ref = contract()
      const alias = `bg-${ref.holderId}`
      return Effect.gen(function* () {
        const engine = yield* CreditEngine
        yield* engine.openHolder(ref, { balanceGroupId: alias })
        yield* engine.getCredit(ref)
        const { lock } = yield* engine.lock(ref)
        yield* engine.extendLock(ref, lock.key)
        yield* engine.modify(ref, lock.key, change("GBP", 500))
        yield* engine.unlock(ref, lock.key)
        yield* engine.setCreditLimits(alias, BRM_EXAMPLE)
        yield* engine.getCreditLimits(alias)
        yield* engine.journal(ref)
        yield* engine.verify(ref)
        yield* engine.lock(ref)
        yield* engine.unlockCustomer({ customerId: ref.customerId })
      }).pipe(
        Effect.withTracer(tracer),
        Effect.provide(engineWith(storage)),
        Effect.andThen(() => {
          const byName = new Map(spans.map((s) => [s.name, s]))
          for (const operation of [
            "openHolder",
            "getCredit",
            "lock",
            "extendLock",
            "modify",
            "unlock",
            "journal",
            "verify",
          ]) {
            const span = byName.get(`CreditEngine.${operation}`)
            expect(span, operation).toBeDefined()
            expect(span?.attributes.get("creditlock.holder"), operation).toBe(
              `${ref.customerId}/${ref.holderType}/${ref.holderId}`,
            )
            expect(span?.status._tag, operation).toBe("Ended")
          }
          expect(byName.get("CreditEngine.unlockCustomer")?.attributes.get("creditlock.customer")).toBe(ref.customerId)
          for (const operation of ["setCreditLimits", "getCreditLimits"]) {
            expect(byName.get(`CreditEngine.${operation}`), operation).toBeDefined()
          }
        }),
      )
    })

    it.effect("a refused operation ends its span failed", () => {
      const { tracer, spans } = recordingTracer()
      const ref = contract(freshCustomer())
      return Effect.gen(function* () {
        const engine = yield* CreditEngine
        yield* engine.openHolder(ref)
        yield* engine.lock(ref)
        expect((yield* Effect.flip(engine.lock(ref)))._tag).toBe("CreditLocked")
      }).pipe(
        Effect.withTracer(tracer),
        Effect.provide(engineWith(storage)),
        Effect.andThen(() => {
          const locks = spans.filter((s) => s.name === "CreditEngine.lock")
          expect(locks).toHaveLength(2)
          const last = locks[1]?.status
          expect(last?._tag === "Ended" && last.exit._tag).toBe("Failure")
        }),
      )
    })

    it.effect(
      "the storage is called inside the operation's span under a tracer, and inside none under the default",
      () => {
        const { tracer } = recordingTracer()
        const { layer, seen } = spanAtLoad(storage)
        const ref = contract()
        return Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* engine.openHolder(ref)
          seen.length = 0
          yield* engine.getCredit(ref)
          expect(seen).toEqual([null])
          yield* Effect.withTracer(engine.getCredit(ref), tracer)
          expect(seen).toEqual([null, "CreditEngine.getCredit"])
        }).pipe(Effect.provide(engineWith(layer)))
      },
    )
  })
