/**
 * @creditlock/test-suite: the conformance suite every `Storage` adapter runs. An adapter's test
 * file is a few lines:
 *
 * ```ts
 * import { conformance } from "@creditlock/test-suite"
 * import { MemoryStorage } from "@creditlock/memory"
 * conformance("memory", MemoryStorage.layer())
 * ```
 *
 * The storage layer is built afresh for each test; tests use fresh customer ids, so a layer
 * over a shared server (Redis, a SQLite file) works too.
 *
 * @module
 */
import { describe } from "@effect/vitest"
import { cacheTests } from "./Cache.js"
import { domainTests } from "./Domain.js"
import { facadeTests } from "./Facade.js"
import { faultTests } from "./Faults.js"
import type { StorageLayer } from "./Harness.js"
import { inputTests } from "./Input.js"
import { limitsTests } from "./Limits.js"
import { type ModelOptions, modelTests } from "./Model.js"
import { type RaceOptions, raceTests } from "./Races.js"
import { tracingTests } from "./Tracing.js"
import { ttlTests } from "./Ttl.js"

export * from "./Harness.js"
export { BRM_EXAMPLE } from "./Limits.js"
export { storageContractTests } from "./StorageContract.js"

import { storageContractTests } from "./StorageContract.js"

/** Tuning of the slower parts of the suite, for adapters whose round trips are costly. */
export interface ConformanceOptions {
  readonly model?: ModelOptions
  readonly races?: RaceOptions
}

/**
 * Registers the whole conformance suite for one storage adapter: the storage-level contract
 * (calling `Storage.commit` directly: atomicity, revisions, conflicts, claims), then every rule
 * through the engine.
 */
export const conformance = (name: string, storage: StorageLayer, options: ConformanceOptions = {}): void => {
  describe(`${name}: conformance`, () => {
    storageContractTests(storage)
    domainTests(storage)
    ttlTests(storage)
    limitsTests(storage)
    modelTests(storage, options.model)
    raceTests(storage, options.races)
    faultTests(storage)
    facadeTests(storage)
    inputTests(storage)
    tracingTests(storage)
    cacheTests(storage)
  })
}
