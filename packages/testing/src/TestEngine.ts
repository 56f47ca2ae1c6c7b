/**
 * Engines for tests: the real `CreditEngine` over an in-memory store, with a controlled clock
 * (see `ControlledClock`), optionally behind fault injection (see `FaultStorage`), and the
 * invariant checker wired to the store.
 *
 * - Promise users: {@link createTestCreditEngine} returns the Promise facade (`createCreditEngine`
 *   of `@creditlock/core`) plus `advance`, `now`, `checkInvariants` and the fault controls.
 * - Effect users: {@link layer} provides `CreditEngine`, the in-memory `Storage` (unfaulted, to
 *   inspect), the clock (`ControlledClockService`) and, with faults, `FaultInjectorService`.
 *
 * @module
 */
import {
  type AsyncCreditEngine,
  CreditEngine,
  type CreditEngineOptions,
  createCreditEngine,
  type HolderRef,
  type InvalidRequest,
} from "@creditlock/core"
import { Storage } from "@creditlock/core/storage"
import { MemoryStorage } from "@creditlock/memory"
import { type Duration, Effect, Layer } from "effect"
import * as ControlledClock from "./ControlledClock.js"
import * as FaultStorage from "./FaultStorage.js"
import * as Invariants from "./Invariants.js"

/** Options of the test engines: engine settings, where the clock starts, and faults to inject. */
export interface TestEngineOptions extends CreditEngineOptions {
  /** The clock's first instant (default `ControlledClock.DEFAULT_START`, 2030-01-01T00:00:00Z). */
  readonly startAt?: Date | number | undefined
  /** Faults to inject between the engine and the store (default: none). */
  readonly faults?: FaultStorage.FaultOptions | undefined
}

/** The Promise facade over a test store, with its clock, its faults and the invariant checker. */
export interface TestCreditEngine extends AsyncCreditEngine {
  /** The engine's clock now. */
  now(): Date
  /** Moves the engine's clock forward (milliseconds, or text such as `"121 seconds"`). */
  advance(duration: Duration.DurationInput): void
  /** Checks the store's invariants for `holders` (see `Invariants.check`), reading past any faults. */
  checkInvariants(holders: Iterable<HolderRef>): Promise<Invariants.InvariantReport>
  /** The in-memory store itself (no faults), e.g. to inspect or corrupt documents in a test. */
  readonly storage: Storage["Type"]
  /** The fault controls: what was injected, and `enabled`. */
  readonly faults: FaultStorage.FaultInjector
  /** The controlled clock. */
  readonly clock: ControlledClock.ControlledClock
}

const split = (options: TestEngineOptions) => {
  const { startAt, faults, ...engine } = options
  return { startAt, faults, engine }
}

/**
 * The Promise facade over a fresh in-memory store and a controlled clock. Engine options outside
 * their ranges throw a `CreditError` (400), as `createCreditEngine` does. Close it (`close()` or
 * `await using`) at the end of the test.
 */
export const createTestCreditEngine = (options: TestEngineOptions = {}): TestCreditEngine => {
  const { startAt, faults, engine } = split(options)
  const clock = ControlledClock.make(startAt)
  const storage = Effect.runSync(MemoryStorage.make)
  const injector = FaultStorage.wrap(storage, faults ?? {})
  const credit = createCreditEngine({
    ...engine,
    // The engine judges time by the Clock of the runtime that runs it; the storage layer's build
    // installs it there.
    storage: Layer.merge(Layer.succeed(Storage, injector.storage), Layer.setClock(clock.clock)),
  })
  return Object.assign(credit, {
    now: clock.now,
    advance: clock.advance,
    checkInvariants: (holders: Iterable<HolderRef>) => Effect.runPromise(Invariants.checkStorage(storage, holders)),
    storage,
    faults: injector,
    clock,
  })
}

/**
 * The engine over a fresh in-memory store and a controlled clock, for Effect code. `Storage` is
 * the store itself (no faults: read or corrupt it directly); the engine sees it through
 * `options.faults` when given. The clock is installed for every effect the layer is provided to.
 */
export const layer = (
  options: TestEngineOptions = {},
): Layer.Layer<
  CreditEngine | Storage | ControlledClock.ControlledClockService | FaultStorage.FaultInjectorService,
  InvalidRequest
> => {
  const { startAt, faults, engine } = split(options)
  const store = MemoryStorage.layer()
  const faulty = FaultStorage.layer(faults ?? {}).pipe(Layer.provide(store))
  const credit = CreditEngine.layer(engine).pipe(Layer.provide(faulty))
  return Layer.mergeAll(
    credit,
    Layer.project(faulty, FaultStorage.FaultInjectorService, FaultStorage.FaultInjectorService, (s) => s),
    store,
    ControlledClock.layer(startAt),
  )
}
