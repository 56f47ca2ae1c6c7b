/**
 * A `Storage` that wraps any other and injects the failures a real backend has: latency,
 * unavailability, commit conflicts, and lost replies — a commit applied and then reported failed
 * (`OutcomeUnknown`), as when a connection drops after the backend wrote. Every fault keeps the
 * storage contract of `@creditlock/core/storage`: a `StorageUnavailable` commit was not applied;
 * a lost reply was applied; nothing is ever applied late or twice.
 *
 * Which call gets which fault is decided either by an explicit plan (a list, one entry per
 * faultable call, as fast-check generates and shrinks it: see {@link plan}) or by a seeded
 * generator with rates: the same seed and the same sequence of calls inject the same faults.
 *
 * @module
 */
import type { HolderRef } from "@creditlock/core"
import {
  type CommitRequest,
  type CommitResult,
  OutcomeUnknown,
  Storage,
  StorageUnavailable,
} from "@creditlock/core/storage"
import { Clock, Context, Duration, Effect, FiberId, Layer } from "effect"
import fc from "fast-check"
import { mulberry32 } from "./internal/prng.js"

/**
 * What happens to one storage call:
 * - `pass`: it runs as the wrapped storage answers;
 * - `unavailable`: it fails with StorageUnavailable and nothing is applied;
 * - `conflict` (commits): it answers `Conflict` without applying, as if another writer had moved
 *   the revision; on a read it is `pass`;
 * - `lostReply` (commits): it is applied, then fails with OutcomeUnknown; later reads work, so
 *   the engine can prove the write from its witness. On a read it is `unavailable`;
 * - `lostReplyUnproven` (commits): as `lostReply`, and the connection of the caller stays down:
 *   the following calls of the same fiber fail with StorageUnavailable (at most
 *   {@link UNPROVEN_OUTAGE_CALLS}), so the engine cannot prove the write and answers
 *   OutcomeUnknown. Other fibers (each Promise-facade call runs in its own) are unaffected; in
 *   Effect code, whatever the same fiber does next (withLock's release, its next operation) meets
 *   the outage too.
 */
export type FaultKind = "pass" | "unavailable" | "conflict" | "lostReply" | "lostReplyUnproven"

/** The fault of one call: its kind, and real milliseconds it takes before it runs. */
export interface Fault {
  readonly kind: FaultKind
  readonly latencyMillis?: number | undefined
}

/** One fault per faultable call, in order; calls past its end pass. */
export type FaultPlan = ReadonlyArray<Fault>

/** How many calls of a fiber fail after a `lostReplyUnproven`. */
export const UNPROVEN_OUTAGE_CALLS = 64

/** The storage method a call is. */
export type StorageOperation = "load" | "commit" | "lookup" | "findEntry" | "journal" | "ping"

/** A call the wrapper sees: its method, its holder when it has one, and the request of a commit. */
export interface StorageCall {
  readonly operation: StorageOperation
  readonly ref?: HolderRef | undefined
  readonly request?: CommitRequest | undefined
}

/** Probabilities (0–1) per call, for seeded injection. */
export interface FaultRates {
  readonly unavailable?: number | undefined
  readonly conflict?: number | undefined
  readonly lostReply?: number | undefined
  readonly lostReplyUnproven?: number | undefined
  /** The probability of latency, and its most (uniform from 0). */
  readonly latency?: { readonly probability: number; readonly maxMillis: number } | undefined
}

/** Options of {@link wrap}. Give `plan` or `seed` (with `rates`); with neither, nothing is injected. */
export interface FaultOptions {
  /** The faults, one per faultable call. */
  readonly plan?: FaultPlan | undefined
  /** Seed of the generator that draws a fault for each faultable call, with `rates`. */
  readonly seed?: number | undefined
  readonly rates?: FaultRates | undefined
  /** Which calls may be faulted (default: all); other calls pass and consume no plan entry. */
  readonly when?: ((call: StorageCall) => boolean) | undefined
  /**
   * Awaited before every call (faulted or not), e.g. `(call) => scheduler.schedule(Promise.resolve(), call.operation)`
   * to let fast-check's `fc.scheduler` order the storage calls of concurrent operations.
   */
  readonly gate?: ((call: StorageCall) => Promise<unknown>) | undefined
}

/** A fault that was injected: the call's number (from 1, among all calls), what it was, and the fault. */
export interface InjectedFault {
  readonly call: number
  readonly operation: StorageOperation
  readonly ref: HolderRef | undefined
  readonly kind: Exclude<FaultKind, "pass"> | "latency" | "outage"
  readonly latencyMillis: number
}

/** A wrapped storage and its controls. */
export interface FaultInjector {
  /** The storage to hand to the engine. */
  readonly storage: Storage["Type"]
  /** The faults injected so far, in order. */
  readonly injected: () => ReadonlyArray<InjectedFault>
  /** While false, every call passes (and consumes nothing): set up state, then enable. Default true. */
  enabled: boolean
}

/** The {@link FaultInjector} of a storage built by {@link layer}. */
export class FaultInjectorService extends Context.Tag("@creditlock/testing/FaultInjector")<
  FaultInjectorService,
  FaultInjector
>() {}

/** A predicate for `when`: commits that append a modification (the writes that move money). */
export const modifications = (call: StorageCall): boolean =>
  call.operation === "commit" && (call.request?.entries.some((e) => e.kind === "modification") ?? false)

const liveClock = Clock.make()

const sleepLive = (millis: number) =>
  millis <= 0 ? Effect.void : Effect.sleep(Duration.millis(millis)).pipe(Effect.withClock(liveClock))

const checkRate = (name: string, rate: number | undefined): number => {
  const value = rate ?? 0
  if (!(value >= 0 && value <= 1)) throw new RangeError(`rates.${name}: must be between 0 and 1, got ${String(rate)}`)
  return value
}

/** Wraps `inner`; see {@link FaultOptions}. */
export const wrap = (inner: Storage["Type"], options: FaultOptions = {}): FaultInjector => {
  const { plan, seed, when, gate } = options
  if (plan !== undefined && seed !== undefined) throw new TypeError("give a plan or a seed, not both")
  const rates = options.rates ?? {}
  const thresholds = [
    ["unavailable", checkRate("unavailable", rates.unavailable)],
    ["conflict", checkRate("conflict", rates.conflict)],
    ["lostReply", checkRate("lostReply", rates.lostReply)],
    ["lostReplyUnproven", checkRate("lostReplyUnproven", rates.lostReplyUnproven)],
  ] as const
  if (thresholds.reduce((sum, [, rate]) => sum + rate, 0) > 1)
    throw new RangeError("rates: the kinds add up to more than 1")
  const latency = rates.latency
  if (latency !== undefined) {
    checkRate("latency.probability", latency.probability)
    if (!(latency.maxMillis >= 0)) throw new RangeError("rates.latency.maxMillis: must be at least 0")
  }
  const random = seed === undefined ? undefined : mulberry32(seed)

  let calls = 0
  let faultable = 0
  const injected: Array<InjectedFault> = []
  /** Fibers whose connection is down, with the calls still to fail. */
  const down = new Map<string, number>()

  const draw = (): Fault => {
    if (plan !== undefined) return plan[faultable - 1] ?? { kind: "pass" }
    if (random === undefined) return { kind: "pass" }
    const roll = random()
    let kind: FaultKind = "pass"
    let acc = 0
    for (const [name, rate] of thresholds) {
      acc += rate
      if (roll < acc) {
        kind = name
        break
      }
    }
    const latencyMillis =
      latency !== undefined && random() < latency.probability ? Math.floor(random() * (latency.maxMillis + 1)) : 0
    return { kind, latencyMillis }
  }

  const unavailable = (detail: string) => new StorageUnavailable({ detail: `injected fault: ${detail}` })

  const around = <A, E, E2 = never>(
    call: StorageCall,
    run: Effect.Effect<A, E>,
    commit?: (fault: Fault, record: (kind: InjectedFault["kind"]) => void) => Effect.Effect<A, E2>,
  ): Effect.Effect<A, E | E2 | StorageUnavailable> =>
    Effect.gen(function* () {
      if (gate !== undefined) yield* Effect.promise(() => gate(call))
      calls += 1
      const number = calls
      const fiber = FiberId.threadName(yield* Effect.fiberId)
      const record = (kind: InjectedFault["kind"], latencyMillis = 0) =>
        injected.push({ call: number, operation: call.operation, ref: call.ref, kind, latencyMillis })
      const outage = down.get(fiber)
      if (outage !== undefined) {
        if (outage <= 1) down.delete(fiber)
        else down.set(fiber, outage - 1)
        record("outage")
        return yield* unavailable("the connection is down after a lost reply")
      }
      if (!injector.enabled || (when !== undefined && !when(call))) return yield* run
      faultable += 1
      const fault = draw()
      const latencyMillis = fault.latencyMillis ?? 0
      if (latencyMillis > 0) {
        record("latency", latencyMillis)
        yield* sleepLive(latencyMillis)
      }
      if (fault.kind === "pass") return yield* run
      if (commit !== undefined) {
        return yield* commit(fault, (kind) => {
          record(kind, latencyMillis)
          if (kind === "lostReplyUnproven") down.set(fiber, UNPROVEN_OUTAGE_CALLS)
        })
      }
      if (fault.kind === "conflict") return yield* run
      record("unavailable", latencyMillis)
      return yield* unavailable(`${call.operation} failed`)
    })

  const commitFault =
    (request: CommitRequest) =>
    (
      fault: Fault,
      record: (kind: InjectedFault["kind"]) => void,
    ): Effect.Effect<CommitResult, StorageUnavailable | OutcomeUnknown> => {
      switch (fault.kind) {
        case "pass":
          return inner.commit(request)
        case "unavailable":
          record("unavailable")
          return Effect.fail(unavailable("the commit was refused; nothing was applied"))
        case "conflict":
          record("conflict")
          return Effect.succeed({ _tag: "Conflict" } as const)
        case "lostReply":
        case "lostReplyUnproven": {
          const kind = fault.kind
          return Effect.flatMap(inner.commit(request), (result) => {
            // Only a write that was applied has a reply worth losing; a conflict is answered as is.
            if (result._tag !== "Committed") return Effect.succeed(result)
            record(kind)
            return Effect.fail(new OutcomeUnknown({ detail: "injected fault: the commit was applied, its reply lost" }))
          })
        }
      }
    }

  const storage = Storage.of({
    load: (ref) => around({ operation: "load", ref }, inner.load(ref)),
    commit: (request) =>
      around({ operation: "commit", ref: request.ref, request }, inner.commit(request), commitFault(request)),
    lookup: (key) => around({ operation: "lookup" }, inner.lookup(key)),
    findEntry: (ref, selector) => around({ operation: "findEntry", ref }, inner.findEntry(ref, selector)),
    journal: (ref, range) => around({ operation: "journal", ref }, inner.journal(ref, range)),
    ping: around({ operation: "ping" }, inner.ping),
  })

  const injector: FaultInjector = { storage, injected: () => [...injected], enabled: true }
  return injector
}

/**
 * Wraps the `Storage` in context (e.g. `Layer.provide(MemoryStorage.layer())`) and provides the
 * wrapper as `Storage`, with its controls as {@link FaultInjectorService}.
 */
export const layer = (options: FaultOptions = {}): Layer.Layer<Storage | FaultInjectorService, never, Storage> =>
  Layer.effectContext(
    Effect.map(Storage, (inner) => {
      const injector = wrap(inner, options)
      return Context.make(Storage, injector.storage).pipe(Context.add(FaultInjectorService, injector))
    }),
  )

/** Options of the {@link fault} and {@link plan} arbitraries: the kinds to draw, and the most latency. */
export interface FaultArbitraryOptions {
  /** Kinds to choose from, with weights (default: mostly `pass`, every other kind sometimes). */
  readonly kinds?: ReadonlyArray<{ readonly kind: FaultKind; readonly weight: number }> | undefined
  /** Latency up to this many real milliseconds (default 0: none). */
  readonly maxLatencyMillis?: number | undefined
  /** Plan length, most (default 20). */
  readonly maxLength?: number | undefined
}

const defaultKinds: ReadonlyArray<{ readonly kind: FaultKind; readonly weight: number }> = [
  { kind: "pass", weight: 6 },
  { kind: "unavailable", weight: 1 },
  { kind: "conflict", weight: 1 },
  { kind: "lostReply", weight: 1 },
  { kind: "lostReplyUnproven", weight: 1 },
]

/** A fast-check arbitrary of one fault; `pass` shrinks first. */
export const fault = (options: FaultArbitraryOptions = {}): fc.Arbitrary<Fault> => {
  const kinds = options.kinds ?? defaultKinds
  const kind = fc.oneof(...kinds.map(({ kind, weight }) => ({ weight, arbitrary: fc.constant(kind) })))
  const max = options.maxLatencyMillis ?? 0
  return max > 0
    ? fc.record({ kind, latencyMillis: fc.integer({ min: 0, max }) })
    : kind.map((kind): Fault => ({ kind }))
}

/** A fast-check arbitrary of fault plans (shrinking towards fewer, milder faults). */
export const plan = (options: FaultArbitraryOptions = {}): fc.Arbitrary<FaultPlan> =>
  fc.array(fault(options), { maxLength: options.maxLength ?? 20 })
