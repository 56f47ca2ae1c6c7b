/**
 * The key layout. Every key of one holder, its journal and the indexes that live with its customer
 * carry the customer id as their hash tag (`{…}`), so in a Redis Cluster they share one slot and one
 * Lua script may touch them all. Index keys are tagged by the value they index, so an index whose
 * value is the customer id lands in the customer's slot and the others ("cross-slot") elsewhere.
 *
 * Ids are escaped so that no id can close a hash tag early, make it empty, or run into the next
 * part of a key: `%`, `{`, `}` and `:` become `%25`, `%7B`, `%7D` and `%3A`. The escaping is
 * injective, so distinct holders never share a key.
 *
 * @internal
 */
import type { HolderRef, IndexKey } from "@creditlock/core/storage"

const escapes: Record<string, string> = { "%": "%25", "{": "%7B", "}": "%7D", ":": "%3A" }

/** Escapes an id for use inside a key (see the module comment). */
export const escapeId = (id: string): string => id.replace(/[%{}:]/g, (c) => escapes[c] ?? c)

/** The keys of one holder. */
export interface HolderKeys {
  /** Hash: `rev` (revision), `doc` (the encoded document), `cid` (id of the last commit). */
  readonly holder: string
  /** List: the journal entries (JSON), position n − 1 holding the n-th entry appended. */
  readonly journal: string
  /** Hash: entry id → position in the journal (1-based). */
  readonly ids: string
  /** Hash: idempotency reference → position in the journal (1-based). */
  readonly references: string
  /** Set: the balance-group aliases whose claim a commit of this holder confirmed. */
  readonly claims: string
}

/** Builds keys under one prefix. */
export interface KeyLayout {
  readonly prefix: string
  readonly holder: (ref: HolderRef) => HolderKeys
  /** The set of holders indexed under `key`, tagged by the key's value. */
  readonly index: (key: IndexKey) => string
  /**
   * String: the one holder that claimed a balance-group alias (set once, SET NX), tagged by the
   * alias. It counts as the holder's alias once the holder's `claims` set has it too.
   */
  readonly claim: (alias: string) => string
  /** Whether an index key lives in the holder's slot (its value is the holder's customer id). */
  readonly sameSlot: (ref: HolderRef, key: IndexKey) => boolean
  /** A SCAN pattern matching every holder key (and nothing else) under the prefix. */
  readonly holderPattern: string
  /** A SCAN pattern matching every claim key (and nothing else) under the prefix. */
  readonly claimPattern: string
}

const globSpecial = /[*?[\]\\]/g

/** Whether `prefix` is usable: it must not contain braces, which would change the hash tag. */
export const validPrefix = (prefix: string): boolean => !/[{}]/.test(prefix)

/** The key layout under `prefix` (which must satisfy {@link validPrefix}). */
export const keyLayout = (prefix: string): KeyLayout => {
  const base = `${prefix}cl:`
  const tag = (value: string) => `{${escapeId(value)}}`
  const glob = base.replace(globSpecial, (c) => `\\${c}`)
  return {
    prefix,
    holder: (ref) => {
      const customer = `${base}${tag(ref.customerId)}`
      const holder = `${escapeId(ref.holderType)}:${escapeId(ref.holderId)}`
      const named = (kind: string) => `${customer}:${kind}:${holder}`
      return {
        holder: named("h"),
        journal: named("j"),
        ids: named("ji"),
        references: named("jr"),
        claims: named("bg"),
      }
    },
    index: (key) => `${base}${tag(key.value)}:ix:${key.kind}`,
    claim: (alias) => `${base}${tag(alias)}:bg`,
    sameSlot: (ref, key) => key.value === ref.customerId,
    holderPattern: `${glob}{*}:h:*`,
    claimPattern: `${glob}{*}:bg`,
  }
}
