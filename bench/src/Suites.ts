/**
 * What `pnpm bench` measures: per adapter, the library and its hand-written baseline, created
 * afresh for every scenario.
 *
 * @module
 */
import { MemoryStorage } from "@creditlock/memory"
import type { Target } from "./Harness.js"
import { engineTarget } from "./targets/Engine.js"
import { mapBaseline } from "./targets/MapBaseline.js"

/** An adapter under test: how to make a library target and its baseline for one scenario. */
export interface Suite {
  readonly adapter: string
  readonly library: () => Promise<Target>
  readonly baseline: () => Promise<Target>
  /** Tears down whatever the suite started (servers, files). */
  readonly close?: () => Promise<void>
}

/** The in-memory adapter against a plain `Map`. */
export const memorySuite = (): Suite => ({
  adapter: "memory",
  library: async () => engineTarget("CreditEngine + MemoryStorage", MemoryStorage.layer()),
  baseline: async () => mapBaseline(),
})
