/**
 * The engine's snapshot cache and per-holder gates.
 *
 * The cache keeps, per holder, the last document this engine read or committed, with its revision,
 * so a write can be planned without loading the holder first: its compare-and-set on the cached
 * revision either lands (the snapshot was current) or answers Conflict (someone else wrote since),
 * and the transaction core then drops the entry and plans again on a fresh load. A stale entry can
 * therefore never commit. Answers that write nothing are different — no compare-and-set checks
 * them — so the core re-checks them on a fresh load, except a `CreditLocked` refusal planned on an
 * entry younger than the cache's `maxAge` (the common answer under contention, where a lock taken
 * or released by another process may be seen up to `maxAge` late).
 *
 * The gates let one operation at a time run load → plan → commit on a holder within this engine:
 * contenders in the same process then plan on the cache as the previous one left it, instead of
 * all committing on the same revision and all but one conflicting.
 *
 * Bounded: at most `maxHolders` entries, least recently used dropped first; a gate exists only
 * while an operation uses it.
 *
 * A revision names one document only if the store never loses a write it acknowledged. A store
 * that does (a Redis failover with asynchronous replication, a backup restored under running
 * engines) may write a cached revision again with another document, which a compare-and-set on
 * the revision cannot tell apart. Any storage failure therefore empties the whole cache (a
 * failover shows as failures to every client); a store rolled back without any client seeing a
 * failure needs the engines restarted, or the cache switched off.
 *
 * @internal
 */
import { Effect } from "effect"
import type { StoredHolder } from "../Storage.js"

/**
 * A cached snapshot: the holder as this engine last read or committed it, and when the read or
 * commit was sent (`performance.now()` ms: monotonic, so a clock step cannot make it young).
 */
export interface Cached {
  readonly stored: StoredHolder
  readonly at: number
}

/** See the module comment. */
export class SnapshotCache {
  private readonly entries = new Map<string, Cached>()
  private readonly gates = new Map<string, Gate>()

  constructor(
    /** The most holders kept (≥ 1). */
    readonly maxHolders: number,
    /** An entry younger than this (ms) may answer a `CreditLocked` refusal without a fresh load. */
    readonly maxAgeMillis: number,
  ) {}

  /** The entry for `key`, marked as recently used; undefined when there is none. */
  get(key: string): Cached | undefined {
    const cached = this.entries.get(key)
    if (cached !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, cached)
    }
    return cached
  }

  /** Records `stored` as read or committed at `at`, unless the entry already holds a later revision. */
  set(key: string, stored: StoredHolder, at: number): void {
    const cached = this.entries.get(key)
    // Revisions only grow: a read that returns after a later commit must not overwrite it.
    if (cached !== undefined) {
      this.entries.delete(key)
      if (cached.stored.revision > stored.revision) {
        this.entries.set(key, cached)
        return
      }
    }
    this.entries.set(key, { stored, at })
    if (this.entries.size > this.maxHolders) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
  }

  /** Forgets `key`: the next operation loads it. */
  delete(key: string): void {
    this.entries.delete(key)
  }

  /** Forgets every holder. */
  clear(): void {
    this.entries.clear()
  }

  /** Whether an operation of this engine is running on the holder `key` (or waiting for its turn). */
  busy(key: string): boolean {
    return this.gates.has(key)
  }

  /** Holders cached now. */
  get size(): number {
    return this.entries.size
  }

  /**
   * Runs `effect` while no other operation of this engine runs on the holder `key`; waiters enter
   * in arrival order. Entering a free gate takes no scheduling step (the common case).
   */
  gated<A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const gate = this.gates.get(key)
        if (gate === undefined) {
          const mine: Gate = { waiters: [] }
          this.gates.set(key, mine)
          return this.inside(key, mine, restore(effect))
        }
        // Queued at once, so a release between now and the wait below cannot miss this waiter.
        const waiter: Waiter = { granted: false, resume: null }
        gate.waiters.push(waiter)
        const wait = Effect.async<void>((resume) => {
          if (waiter.granted) resume(Effect.void)
          else waiter.resume = () => resume(Effect.void)
        })
        return Effect.flatMap(
          Effect.onInterrupt(restore(wait), () =>
            Effect.sync(() => {
              // Handed the gate just as it was interrupted: pass it on; else leave the queue.
              if (waiter.granted) this.release(key, gate)
              else gate.waiters.splice(gate.waiters.indexOf(waiter), 1)
            }),
          ),
          () => this.inside(key, gate, restore(effect)),
        )
      }),
    )
  }

  private inside<A, E, R>(key: string, gate: Gate, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.flatMap(Effect.exit(effect), (exit) => {
      this.release(key, gate)
      return exit
    })
  }

  /** Hands the gate to the next waiter, or removes it when none waits. */
  private release(key: string, gate: Gate): void {
    const next = gate.waiters.shift()
    if (next === undefined) {
      if (this.gates.get(key) === gate) this.gates.delete(key)
      return
    }
    next.granted = true
    next.resume?.()
  }
}

/** A holder's gate while an operation is inside: the operations waiting to enter, in order. */
interface Gate {
  readonly waiters: Array<Waiter>
}

interface Waiter {
  granted: boolean
  resume: (() => void) | null
}
