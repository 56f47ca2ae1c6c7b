/**
 * @creditlock/testing: property-test billing code against creditlock — fast-check arbitraries of
 * the engine's inputs (accepted and rejected), test engines with a controlled clock for Promise
 * and Effect code, a fault-injecting `Storage`, and an invariant checker over a store.
 *
 * @module
 */

/** fast-check arbitraries: what the engine accepts, and what it must reject (with the error it answers). */
export * as Arbitraries from "./Arbitraries.js"
/** A clock that moves only when told to (`advance`), for lock TTLs and temporary limits. */
export * as ControlledClock from "./ControlledClock.js"
/** A `Storage` wrapper that injects latency, unavailability, conflicts and lost replies. */
export * as FaultStorage from "./FaultStorage.js"
/** The invariant checker over a store and a set of holders. */
export * as Invariants from "./Invariants.js"
/** Test engines: `createTestCreditEngine()` for Promise code, `TestEngine.layer()` for Effect code. */
export * as TestEngine from "./TestEngine.js"
export { createTestCreditEngine, type TestCreditEngine, type TestEngineOptions } from "./TestEngine.js"
