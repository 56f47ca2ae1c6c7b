/**
 * @creditlock/memory: the in-memory `Storage` for @creditlock/core — the reference adapter, for
 * tests, single-process tools and as the model the other adapters are checked against.
 *
 * @module
 */
export * as MemoryStorage from "./MemoryStorage.js"
