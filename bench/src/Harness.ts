/**
 * The contention harness: N contenders loop lock → modify → unlock (retrying on 423, or waiting
 * the target's own way when it has one) against a target for a fixed time, and the run reports throughput, latency percentiles, retries, the
 * longest wait of any contender, and whether any acknowledged update was lost or duplicated.
 *
 * A target is either the library (through `CreditEngine`) or a baseline doing the same logical
 * work by hand, behind the same small async interface, so both are measured the same way.
 *
 * @module
 */
import { setTimeout as sleep, setImmediate as yieldToLoop } from "node:timers/promises"

/** What one lock attempt answered: a key, or "locked by someone else". */
export type LockAttempt = { readonly key: string } | "locked"

/** The operations a benchmark target exposes. Every call works on one holder id. */
export interface Target {
  readonly name: string
  /** Creates the holder (idempotent). */
  readonly open: (holderId: string) => Promise<void>
  readonly lock: (holderId: string) => Promise<LockAttempt>
  /** Applies `delta` under the lock; rejects when refused. */
  readonly modify: (holderId: string, key: string, delta: number) => Promise<void>
  readonly unlock: (holderId: string, key: string) => Promise<void>
  /**
   * One lock → modify → unlock the target's own way, waiting for the lock as its API does (the
   * library's `withLock`); without it the harness polls `lock` with back-off, as hand-written code
   * does. `waitedMs`: until the lock was granted; `applied`: the modification was acknowledged;
   * `failed`: the cycle rejected (after the modification, when `applied`).
   */
  readonly cycle?: (
    holderId: string,
    delta: number,
  ) => Promise<{ readonly waitedMs: number; readonly applied: boolean; readonly failed: boolean }>
  /** Lock refusals the target counted itself (the ones `cycle` waited out), running total. */
  readonly refusals?: () => Promise<number>
  /** The holder's value and the number of journaled modifications. */
  readonly read: (holderId: string) => Promise<{ readonly value: number; readonly modifications: number }>
  /**
   * A running count of round trips to the store, read before and after the contenders run:
   * commands the server processed from every client (`scope: "store"`), or calls this process
   * made into its storage (`scope: "process"`). Absent when the target has no such count.
   */
  readonly roundTrips?: { readonly scope: "store" | "process"; readonly count: () => Promise<number> }
  readonly close: () => Promise<void>
}

/** One scenario run: `contenders` loops spread over `holders` holders for `durationMs`. */
export interface ScenarioOptions {
  readonly contenders: number
  readonly holders: number
  readonly durationMs: number
  /** Prefix making holder ids unique to this run (targets may share a server). */
  readonly runId: string
}

/** What a scenario measured. Latencies in milliseconds. */
export interface ScenarioResult {
  readonly contenders: number
  readonly holders: number
  readonly cycles: number
  readonly seconds: number
  readonly cyclesPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly retriesPerCycle: number
  /** The longest time any contender waited for a lock (starvation). */
  readonly maxWait: number
  /** Acknowledged updates missing from the final state, or present twice (must both be 0). */
  readonly lost: number
  readonly duplicated: number
  /** Cycles that failed for a reason other than contention. */
  readonly errors: number
  /**
   * CPU time (user + system) of the process(es) running the contenders, per cycle, in µs: the
   * steadier figure on a shared machine, where wall-clock throughput moves with the load.
   */
  readonly cpuMicrosPerCycle: number
  /** Round trips to the store per cycle (refused lock attempts included); null when not counted. */
  readonly roundTripsPerCycle: number | null
}

/**
 * How a contender waits after a 423: the next turn of the event loop first, then a jittered
 * exponential back-off (up to 2, 4, …, 64 ms) — what a well-behaved client does, so that
 * waiting contenders do not flood the store while the lock holder works.
 */
const backoff = (refused: number): Promise<unknown> =>
  refused === 1 ? yieldToLoop() : sleep(Math.random() * Math.min(2 ** (refused - 1), 64))

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0)

/** What the contenders of one process observed. */
export interface ContentionLog {
  /** Cycle latencies, ms. */
  readonly latencies: Array<number>
  /** Acknowledged deltas and modifications per holder. */
  readonly acknowledged: Record<string, { sum: number; count: number }>
  readonly retries: number
  readonly maxWait: number
  readonly errors: number
  readonly seconds: number
  /** CPU time the process spent while its contenders ran, µs. */
  readonly cpuMicros: number
}

/** Holder ids of a run. */
export const holderIdsOf = (runId: string, holders: number): ReadonlyArray<string> =>
  Array.from({ length: holders }, (_, i) => `${runId}-h${i}`)

/**
 * Runs `contenders` loops of lock → modify → unlock for `durationMs`; contender c works on
 * holder c mod holders (offset by `first`, so several processes spread over the same holders).
 */
export const contend = async (
  target: Target,
  holderIds: ReadonlyArray<string>,
  contenders: number,
  durationMs: number,
  first = 0,
): Promise<ContentionLog> => {
  const latencies: Array<number> = []
  const acknowledged: Record<string, { sum: number; count: number }> = {}
  for (const id of holderIds) acknowledged[id] = { sum: 0, count: 0 }
  let retries = 0
  let maxWait = 0
  let errors = 0
  const refusedBefore = (await target.refusals?.()) ?? 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  const deadline = started + durationMs

  const contender = async (c: number) => {
    const holderId = holderIds[(first + c) % holderIds.length] as string
    const acks = acknowledged[holderId] as { sum: number; count: number }
    let i = 0
    const own = target.cycle
    while (own !== undefined && performance.now() < deadline) {
      const t0 = performance.now()
      const delta = 1 + ((first + c + i++) % 7)
      const { waitedMs, applied, failed } = await own(holderId, delta)
      if (waitedMs > maxWait) maxWait = waitedMs
      if (applied) {
        acks.sum += delta
        acks.count++
      }
      if (failed) errors++
      latencies.push(performance.now() - t0)
      await yieldToLoop()
    }
    while (own === undefined && performance.now() < deadline) {
      const t0 = performance.now()
      let attempt = await target.lock(holderId)
      for (let refused = 1; attempt === "locked"; refused++) {
        retries++
        await backoff(refused)
        attempt = await target.lock(holderId)
      }
      const waited = performance.now() - t0
      if (waited > maxWait) maxWait = waited
      const delta = 1 + ((first + c + i++) % 7)
      try {
        await target.modify(holderId, attempt.key, delta)
        acks.sum += delta
        acks.count++
      } catch {
        errors++
      }
      await target.unlock(holderId, attempt.key)
      latencies.push(performance.now() - t0)
      // A real client's next request arrives through I/O: give waiting contenders a turn
      // instead of re-locking in the same tick (which starves them on a synchronous store).
      await yieldToLoop()
    }
  }
  await Promise.all(Array.from({ length: contenders }, (_, c) => contender(c)))
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  if (target.refusals !== undefined) retries += (await target.refusals()) - refusedBefore
  return { latencies, acknowledged, retries, maxWait, errors, seconds, cpuMicros: used.user + used.system }
}

/** Compares the final state with what was acknowledged, and summarises the logs of all processes. */
export const summarise = async (
  target: Target,
  holderIds: ReadonlyArray<string>,
  contenders: number,
  logs: ReadonlyArray<ContentionLog>,
  roundTrips: number | null = null,
): Promise<ScenarioResult> => {
  let lost = 0
  let duplicated = 0
  for (const id of holderIds) {
    const { value, modifications } = await target.read(id)
    const sum = logs.reduce((s, l) => s + (l.acknowledged[id]?.sum ?? 0), 0)
    const count = logs.reduce((s, l) => s + (l.acknowledged[id]?.count ?? 0), 0)
    if (value < sum) lost += sum - value
    if (value > sum) duplicated += value - sum
    if (modifications < count) lost += count - modifications
    if (modifications > count) duplicated += modifications - count
  }
  const latencies = logs.flatMap((l) => l.latencies).sort((a, b) => a - b)
  const seconds = Math.max(...logs.map((l) => l.seconds))
  const retries = logs.reduce((s, l) => s + l.retries, 0)
  return {
    contenders,
    holders: holderIds.length,
    cycles: latencies.length,
    seconds,
    cyclesPerSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    retriesPerCycle: latencies.length === 0 ? 0 : retries / latencies.length,
    maxWait: Math.max(...logs.map((l) => l.maxWait)),
    lost,
    duplicated,
    errors: logs.reduce((s, l) => s + l.errors, 0),
    cpuMicrosPerCycle: latencies.length === 0 ? 0 : logs.reduce((s, l) => s + l.cpuMicros, 0) / latencies.length,
    roundTripsPerCycle: roundTrips === null || latencies.length === 0 ? null : roundTrips / latencies.length,
  }
}

/** Counts the round trips `run` makes through `target`, when the target counts them. */
export const countingRoundTrips = async <A>(
  target: Target,
  run: () => Promise<A>,
): Promise<{ readonly result: A; readonly roundTrips: number | null }> => {
  const before = await target.roundTrips?.count()
  const result = await run()
  const after = await target.roundTrips?.count()
  return { result, roundTrips: before === undefined || after === undefined ? null : after - before }
}

/** Runs one scenario in this process against a target and checks the final state. */
export const runScenario = async (target: Target, options: ScenarioOptions): Promise<ScenarioResult> => {
  const holderIds = holderIdsOf(options.runId, options.holders)
  for (const id of holderIds) await target.open(id)
  const { result: log, roundTrips } = await countingRoundTrips(target, () =>
    contend(target, holderIds, options.contenders, options.durationMs),
  )
  return summarise(target, holderIds, options.contenders, [log], roundTrips)
}
