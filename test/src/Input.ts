/**
 * Conformance: strict input. Unknown fields, impossible dates and engine options outside their
 * ranges are refused with InvalidRequest naming what is wrong — and nothing is changed.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { CreditEngine, type CreditEngineOptions, CreditError, createCreditEngine, type Storage } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { change, contract, creditValue, engineWith, expectRejected, type StorageLayer } from "./Harness.js"

export const inputTests = (storage: StorageLayer) => {
  const provide = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>) =>
    Effect.provide(effect, engineWith(storage))

  describe("strict input", () => {
    it.effect("unknown fields are refused, naming the field, with nothing changed", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          const misspelt = { ...change("GBP", 10, "bill"), refernce: "inv-1" }
          const error = yield* expectRejected(ref, "InvalidRequest", engine.modify(ref, lock.key, misspelt as never))
          expect(error.detail).toContain("refernce")
          const extraInModification = {
            reason: "bill",
            modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 1, scale: 2 } }],
          }
          const nested = yield* expectRejected(
            ref,
            "InvalidRequest",
            engine.modify(ref, lock.key, extraInModification as never),
          )
          expect(nested.detail).toContain("scale")
          const badRef = yield* expectRejected(
            ref,
            "InvalidRequest",
            engine.getCredit({ ...ref, holderTyp: "contracts" } as never),
          )
          expect(badRef.detail).toContain("holderTyp")
          // A symbol key is named too (as `Symbol(…)`), not turned into a defect; tryLock's fast path refuses it as well.
          const symbolKeyed = { ...ref, [Symbol("extra")]: 1 } as never
          const badSymbol = yield* expectRejected(ref, "InvalidRequest", engine.getCredit(symbolKeyed))
          expect(badSymbol.detail).toContain("Symbol(extra)")
          expect((yield* Effect.flip(engine.tryLock(symbolKeyed)))._tag).toBe("InvalidRequest")
          const badOpen = yield* expectRejected(
            ref,
            "InvalidRequest",
            engine.openHolder(ref, { balanceGroup: "x" } as never),
          )
          expect(badOpen.detail).toContain("balanceGroup")
          const badLimits = yield* expectRejected(
            ref,
            "InvalidRequest",
            engine.setCreditLimits("x", { resourceId: 826, limt: 1 } as never),
          )
          expect(badLimits.detail).toContain("limt")
          const badLookup = yield* expectRejected(
            ref,
            "InvalidRequest",
            engine.unlockCustomer({ customerId: ref.customerId, customer: "y" } as never),
          )
          expect(badLookup.detail).toContain("customer")
          yield* expectRejected(ref, "InvalidRequest", engine.journal(ref, { limit: 5, from: 2 } as never))
          expect(yield* creditValue(ref, "GBP")).toBe(0)
        }),
      ),
    )

    it("the Promise facade refuses a misspelt reference: the second call does not debit again", async () => {
      await using engine = createCreditEngine({ storage })
      const ref = contract()
      await engine.openHolder(ref)
      const { lock } = await engine.lock(ref)
      await engine.modify(ref, lock.key, change("GBP", 500, "top-up"))
      for (let i = 0; i < 2; i++) {
        const refused = await engine
          .modify(ref, lock.key, { ...change("GBP", -100, "bill"), refernce: "inv-1" } as never)
          .catch((e: unknown) => e)
        expect(refused).toBeInstanceOf(CreditError)
        expect(refused).toMatchObject({ status: 400, code: "INVALID_REQUEST" })
        expect((refused as CreditError).detail).toContain("refernce")
      }
      expect((await engine.getCredit(ref)).current.credit[0]?.amount.value).toBe(500)
    })

    it.effect("dates are strict ISO 8601 with a zone and real calendar values", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          const balanceGroupId = `bg-${randomUUID()}`
          yield* engine.openHolder(ref, { balanceGroupId })
          const temp = (validFrom: string, validTo: string) =>
            engine.setCreditLimits(balanceGroupId, {
              resourceId: 826,
              tempCreditLimit: [{ limit: 10, validFrom, validTo }],
            })
          for (const [from, to] of [
            ["2026-02-30T00:00:00Z", "2026-03-05T00:00:00Z"],
            ["2026-03-01T24:00:00Z", "2026-03-05T00:00:00Z"],
            ["2026-03-01T23:60:00Z", "2026-03-05T00:00:00Z"],
            ["2026-03-01T23:59:60Z", "2026-03-05T00:00:00Z"],
            ["2027-02-29T00:00:00Z", "2027-03-05T00:00:00Z"],
            ["2026-13-01T00:00:00Z", "2027-03-05T00:00:00Z"],
            ["2026-03-01T00:00:00+24:00", "2026-03-05T00:00:00Z"],
            ["2026-03-01T00:00:00", "2026-03-05T00:00:00Z"],
            ["2026-03-01", "2026-03-05T00:00:00Z"],
          ] as const) {
            const error = yield* expectRejected(ref, "InvalidRequest", temp(from, to))
            expect(error.detail).toContain(from)
          }
          const leap = yield* temp("2028-02-29T00:00:00Z", "2028-03-01T00:00:00.5+01:00")
          expect(leap.limits[0]?.temporary[0]).toMatchObject({
            validFrom: Date.UTC(2028, 1, 29),
            validTo: Date.UTC(2028, 1, 29, 23, 0, 0, 500),
          })
        }),
      ),
    )

    it.effect("engine options outside their documented ranges fail the layer, naming the option", () =>
      Effect.gen(function* () {
        const build = (options: CreditEngineOptions) =>
          Effect.flip(Layer.build(CreditEngine.layer(options).pipe(Layer.provide(storage))).pipe(Effect.scoped))
        const cases: ReadonlyArray<readonly [CreditEngineOptions, string]> = [
          [{ lockTtl: 0 }, "lockTtl"],
          [{ lockTtl: Duration.infinity }, "lockTtl"],
          [{ lockTtl: "forever" as never }, "lockTtl"],
          [{ lockTtl: Duration.hours(25) }, "lockTtl"],
          [{ maxAttempts: Number.NaN }, "maxAttempts"],
          [{ maxAttempts: 0 }, "maxAttempts"],
          [{ maxAttempts: 1.5 }, "maxAttempts"],
          [{ eventBufferSize: 0 }, "eventBufferSize"],
          [{ settleTimeout: Duration.infinity }, "settleTimeout"],
          [{ settleTimeout: -1 }, "settleTimeout"],
          [{ lockTTL: 1000 } as never, "lockTTL"],
        ]
        for (const [options, name] of cases) {
          const error = yield* build(options)
          expect(error).toMatchObject({ _tag: "InvalidRequest" })
          expect((error as { detail: string }).detail).toContain(name)
          expect(() => createCreditEngine({ storage, ...options })).toThrow(name)
        }
        // In range, the layer builds.
        yield* Layer.build(
          CreditEngine.layer({ lockTtl: "1 millis", maxAttempts: 1, settleTimeout: 0 }).pipe(Layer.provide(storage)),
        ).pipe(Effect.scoped)
      }),
    )
  })
}
