/**
 * Conformance: a model-based test (fast-check `fc.commands` + `fc.asyncModelRun`). Random sequences
 * of open / lock / modify / unlock / unlockCustomer / clock advances run against the engine over
 * the adapter and against a small reference model; every outcome must agree, and after every step
 * the holder's credit matches the model, never goes below the minimum, and its journal balances.
 * Lock fencing tokens increase by exactly one per grant on each holder (across expiry, takeover
 * and admin unlocks), and each modification's journal entry records the token of its lock.
 * Extensions move a live lock's expiry to a TTL from now, never past its lifetime cap, and never
 * revive an expired lock.
 *
 * @module
 */
import { CreditEngine, type HolderRef, type Storage } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted, Runtime, TestClock, TestContext } from "effect"
import fc from "fast-check"
import { contract, customerHolder, engineWith, freshCustomer, type StorageLayer } from "./Harness.js"

const TTL = 120_000
/** The total lifetime of a lock, extensions included: short, so that runs reach it. */
const MAX_LIFETIME = 200_000
const CURRENCIES = ["GBP", "EUR"] as const

interface ModelHolder {
  open: boolean
  readonly credit: Map<string, number>
  /** The last lock granted, live or expired; null once released. */
  lock: {
    readonly key: string
    readonly grantedAt: number
    expiresAt: number
    readonly token: number
    readonly reference: string | undefined
  } | null
  /** The fencing token of the last grant (0: none). */
  lastToken: number
  readonly keys: Array<string>
  entries: number
}

interface Model {
  now: number
  readonly holders: ReadonlyArray<ModelHolder>
}

interface Real {
  readonly run: <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>) => Promise<Either.Either<A, E>>
  readonly refs: ReadonlyArray<HolderRef>
}

/** Holders 0 and 1 belong to customer 0, holder 2 to customer 1. */
const CUSTOMER_OF = [0, 0, 1] as const

type KeyPick = "current" | "stale" | "bogus"

const live = (h: ModelHolder, now: number) => h.lock !== null && now < h.lock.expiresAt

const pickKey = (h: ModelHolder, pick: KeyPick, staleIndex: number): string => {
  if (pick === "current" && h.lock !== null) return h.lock.key
  if (pick === "stale" && h.keys.length > 0) return h.keys[staleIndex % h.keys.length] ?? "bogus-key"
  return "bogus-key"
}

/**
 * What the engine must refuse a call under `key` with (modify, extend), or undefined when the key
 * is the live lock's: no holder; the holder's last lock, expired; another live lock; none.
 */
const keyRefusal = (h: ModelHolder, key: string, now: number): string | undefined =>
  !h.open
    ? "HolderNotFound"
    : !live(h, now)
      ? h.lock?.key === key
        ? "LockExpired"
        : "LockNotHeld"
      : h.lock?.key !== key
        ? "LockKeyMismatch"
        : undefined

const tagOf = <A, E>(result: Either.Either<A, E>): string =>
  Either.isRight(result) ? "ok" : (result.left as { _tag: string })._tag

/** After a step on holder `i`: credit equals the model, is never below 0, and the journal balances. */
const checkHolder = async (m: Model, r: Real, i: number) => {
  const h = m.holders[i]
  const ref = r.refs[i]
  if (h === undefined || ref === undefined || !h.open) return
  const view = await r.run(Effect.flatMap(CreditEngine, (e) => e.getCredit(ref)))
  const credit = Either.getOrThrow(view).current.credit.map((c) => [c.amount.currencyCode, c.amount.value])
  expect(Object.fromEntries(credit)).toEqual(Object.fromEntries(h.credit))
  for (const [, value] of credit) expect(value).toBeGreaterThanOrEqual(0)
  const report = Either.getOrThrow(await r.run(Effect.flatMap(CreditEngine, (e) => e.verify(ref))))
  expect(report.ok).toBe(true)
  expect(report.entries).toBe(h.entries)
}

class Open implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    const h = m.holders[this.i] as ModelHolder
    const result = await r.run(Effect.flatMap(CreditEngine, (e) => e.openHolder(r.refs[this.i] as HolderRef)))
    expect(Either.getOrThrow(result).created).toBe(!h.open)
    if (!h.open) h.entries = 1
    h.open = true
    await checkHolder(m, r, this.i)
  }
  toString = () => `open(${this.i})`
}

class Lock implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly reference?: string,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    const h = m.holders[this.i] as ModelHolder
    const options = this.reference === undefined ? {} : { reference: this.reference }
    const result = await r.run(Effect.flatMap(CreditEngine, (e) => e.lock(r.refs[this.i] as HolderRef, options)))
    const retry = live(h, m.now) && this.reference !== undefined && h.lock?.reference === this.reference
    const expected = !h.open ? "HolderNotFound" : retry ? "ok" : live(h, m.now) ? "CreditLocked" : "ok"
    expect(tagOf(result)).toBe(expected)
    if (retry && Either.isRight(result) && h.lock !== null) {
      // A retry under the reference of the live lock: that same lock, never a second live key.
      expect(Redacted.value(result.right.lock.key)).toBe(h.lock.key)
      expect(result.right.lock.expiry.getTime()).toBe(h.lock.expiresAt)
      expect(result.right.lock.token).toBe(h.lock.token)
    } else if (Either.isRight(result)) {
      const key = Redacted.value(result.right.lock.key)
      expect(result.right.lock.expiry.getTime()).toBe(m.now + TTL)
      expect(result.right.lock.token, "the next fencing token").toBe(h.lastToken + 1)
      h.lastToken = result.right.lock.token
      h.lock = { key, grantedAt: m.now, expiresAt: m.now + TTL, token: h.lastToken, reference: this.reference }
      h.keys.push(key)
    }
    await checkHolder(m, r, this.i)
  }
  toString = () => `lock(${this.i}${this.reference === undefined ? "" : `, ${this.reference}`})`
}

class Modify implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly pick: KeyPick,
    readonly staleIndex: number,
    readonly deltas: ReadonlyArray<readonly [string, number]>,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    const h = m.holders[this.i] as ModelHolder
    const key = pickKey(h, this.pick, this.staleIndex)
    const request = {
      reason: "model",
      modifications: this.deltas.map(([currencyCode, value]) => ({
        type: "monetary" as const,
        changeAmount: { currencyCode, value },
      })),
    }
    const result = await r.run(Effect.flatMap(CreditEngine, (e) => e.modify(r.refs[this.i] as HolderRef, key, request)))
    const expected =
      keyRefusal(h, key, m.now) ??
      (this.deltas.some(([c, v]) => v < 0 && (h.credit.get(c) ?? 0) + v < 0) ? "InsufficientCredit" : "ok")
    expect(tagOf(result)).toBe(expected)
    if (expected === "ok") {
      for (const [c, v] of this.deltas) h.credit.set(c, (h.credit.get(c) ?? 0) + v)
      h.entries++
      const page = Either.getOrThrow(
        await r.run(
          Effect.flatMap(CreditEngine, (e) => e.journal(r.refs[this.i] as HolderRef, { after: h.entries - 1 })),
        ),
      )
      expect(page.entries[0]?.lockToken, "the entry records its lock's token").toBe(h.lock?.token)
    }
    await checkHolder(m, r, this.i)
  }
  toString = () => `modify(${this.i}, ${this.pick}#${this.staleIndex}, ${JSON.stringify(this.deltas)})`
}

class Unlock implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly pick: KeyPick,
    readonly staleIndex: number,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    const h = m.holders[this.i] as ModelHolder
    const key = pickKey(h, this.pick, this.staleIndex)
    const result = await r.run(Effect.flatMap(CreditEngine, (e) => e.unlock(r.refs[this.i] as HolderRef, key)))
    const expected = !h.open
      ? "HolderNotFound"
      : !live(h, m.now)
        ? "ok"
        : h.lock?.key !== key
          ? "LockKeyMismatch"
          : "ok"
    expect(tagOf(result)).toBe(expected)
    // Only a live lock is released; an expired one stays the holder's last lock.
    if (expected === "ok" && live(h, m.now)) h.lock = null
    await checkHolder(m, r, this.i)
  }
  toString = () => `unlock(${this.i}, ${this.pick}#${this.staleIndex})`
}

class Extend implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly pick: KeyPick,
    readonly staleIndex: number,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    const h = m.holders[this.i] as ModelHolder
    const key = pickKey(h, this.pick, this.staleIndex)
    const result = await r.run(Effect.flatMap(CreditEngine, (e) => e.extendLock(r.refs[this.i] as HolderRef, key)))
    const expected = keyRefusal(h, key, m.now) ?? "ok"
    expect(tagOf(result)).toBe(expected)
    if (Either.isRight(result) && h.lock !== null) {
      h.lock.expiresAt = Math.max(h.lock.expiresAt, Math.min(m.now + TTL, h.lock.grantedAt + MAX_LIFETIME))
      expect(result.right.lock).toEqual({ expiry: new Date(h.lock.expiresAt), token: h.lock.token })
      expect(h.lock.expiresAt - h.lock.grantedAt).toBeLessThanOrEqual(MAX_LIFETIME)
    }
    await checkHolder(m, r, this.i)
  }
  toString = () => `extend(${this.i}, ${this.pick}#${this.staleIndex})`
}

class UnlockCustomer implements fc.AsyncCommand<Model, Real> {
  constructor(readonly customer: 0 | 1) {}
  check = () => true
  async run(m: Model, r: Real) {
    const mine = m.holders.filter((_, i) => CUSTOMER_OF[i] === this.customer)
    const customerId = (r.refs[CUSTOMER_OF.indexOf(this.customer)] as HolderRef).customerId
    const result = await r.run(Effect.flatMap(CreditEngine, (e) => e.unlockCustomer({ customerId })))
    expect(tagOf(result)).toBe(mine.some((h) => h.open) ? "ok" : "HolderNotFound")
    if (Either.isRight(result)) {
      const releasing = mine.filter((h) => h.open && live(h, m.now))
      expect(result.right.released).toHaveLength(releasing.length)
      for (const h of releasing) {
        h.lock = null
        h.entries++
      }
    }
    for (let i = 0; i < m.holders.length; i++) await checkHolder(m, r, i)
  }
  toString = () => `unlockCustomer(${this.customer})`
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly millis: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    await r.run(TestClock.adjust(this.millis))
    m.now += this.millis
  }
  toString = () => `advance(${this.millis})`
}

const holderIndex = fc.integer({ min: 0, max: 2 })
const keyPick = fc.constantFrom<KeyPick>("current", "current", "stale", "bogus")
const deltas = fc.uniqueArray(fc.constantFrom(...CURRENCIES), { minLength: 1, maxLength: 2 }).chain((codes) =>
  fc.tuple(
    ...codes.map((c) =>
      fc.tuple(
        fc.constant(c),
        fc.integer({ min: -300, max: 300 }).filter((v) => v !== 0),
      ),
    ),
  ),
)

const commands = [
  holderIndex.map((i) => new Open(i)),
  holderIndex.map((i) => new Lock(i)),
  fc.tuple(holderIndex, keyPick, fc.nat(5), deltas).map(([i, p, s, d]) => new Modify(i, p, s, d)),
  fc.tuple(holderIndex, keyPick, fc.nat(5)).map(([i, p, s]) => new Unlock(i, p, s)),
  fc.tuple(holderIndex, keyPick, fc.nat(5)).map(([i, p, s]) => new Extend(i, p, s)),
  // Locks and extensions twice as often, so that sequences reach extended locks and their cap;
  // the second kind of lock carries one of two references, so retries meet their own lock.
  fc.tuple(holderIndex, fc.constantFrom("ref-a", "ref-b")).map(([i, reference]) => new Lock(i, reference)),
  fc.tuple(holderIndex, keyPick, fc.nat(5)).map(([i, p, s]) => new Extend(i, p, s)),
  fc.constantFrom<0 | 1>(0, 1).map((c) => new UnlockCustomer(c)),
  fc.constantFrom(1, 1_000, 50_000, 50_000, 60_000, 119_999, 120_000, 120_000, 300_000).map((ms) => new Advance(ms)),
]

export interface ModelOptions {
  /** Runs of the property (default 200). */
  readonly numRuns?: number
}

export const modelTests = (storage: StorageLayer, options: ModelOptions = {}) => {
  describe("model-based", () => {
    it.live(
      "random sequences of operations agree with the reference model",
      () =>
        Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
              const program = Effect.gen(function* () {
                const runtime = yield* Effect.runtime<CreditEngine | Storage>()
                const a = freshCustomer()
                const refs = [contract(a), customerHolder(a), contract(freshCustomer())]
                const real: Real = {
                  run: (effect) => Runtime.runPromise(runtime)(Effect.either(effect)),
                  refs,
                }
                // Holder 0 starts open, so most sequences reach locks, modifications and extensions;
                // the others start unopened, so sequences also meet HolderNotFound and opening.
                const engine = yield* CreditEngine
                yield* engine.openHolder(refs[0] as HolderRef)
                const setup = () => ({
                  model: {
                    now: 0,
                    holders: refs.map((_, i) => ({
                      open: i === 0,
                      credit: new Map(),
                      lock: null,
                      lastToken: 0,
                      keys: [],
                      entries: i === 0 ? 1 : 0,
                    })),
                  },
                  real,
                })
                yield* Effect.promise(() => fc.asyncModelRun(setup, cmds))
              })
              await Effect.runPromise(
                program.pipe(
                  Effect.provide(engineWith(storage, { maxLockLifetime: MAX_LIFETIME })),
                  Effect.provide(TestContext.TestContext),
                ),
              )
            }),
            { numRuns: options.numRuns ?? 200 },
          ),
        ),
      120_000,
    )
  })
}
