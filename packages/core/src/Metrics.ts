/**
 * The engine's metrics, as Effect `Metric`s: recorded in the default metric registry of the
 * runtime the engine runs in (read them with `Metric.snapshot`; the `creditlock` server exports
 * them in the Prometheus text format). Labels never hold an id, a key or an amount.
 *
 * @module
 */
import { Metric, MetricBoundaries } from "effect"

/**
 * Engine operations that ended, by `operation` (`lock`, `modify`, `unlock`, …) and `outcome`:
 * `ok`, the tag of the typed failure (`CreditLocked`, `StorageUnavailable`, `OutcomeUnknown`, …),
 * `interrupted` or `defect`.
 */
export const engineOperations = Metric.counter("creditlock_operations_total", {
  description: "Engine operations that ended, by operation and outcome",
  incremental: true,
})

/** Seconds an engine operation took, by `operation` (from its start to its end, whatever the outcome). */
export const engineOperationDuration = Metric.histogram(
  "creditlock_operation_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 }),
  "Seconds an engine operation took, by operation",
)

/**
 * Operations refused because of a lock (HTTP 423), by `operation` and `reason`:
 * `CreditLocked` (another lock is live), `LockKeyMismatch`, `LockNotHeld`, `LockExpired`.
 */
export const engineLockRefusals = Metric.counter("creditlock_lock_refusals_total", {
  description: "Operations refused because of a lock (423), by operation and reason",
  incremental: true,
})
