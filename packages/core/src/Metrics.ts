/**
 * The engine's metrics, as Effect `Metric`s: recorded in the default metric registry of the
 * runtime the engine runs in (read them with `Metric.snapshot`; the `creditlock` server exports
 * them in the Prometheus text format). Labels never hold an id, a key or an amount. Each is
 * recorded with the labels named here only: labels a caller sets on its fibers
 * (`Effect.labelMetrics`) are not added, which keeps the series fixed and recording cheap.
 *
 * @module
 */
import { Metric } from "effect"
import { keys } from "./internal/metrics.js"

/**
 * Engine operations that ended, by `operation` (`lock`, `modify`, `unlock`, …) and `outcome`:
 * `ok`, the tag of the typed failure (`CreditLocked`, `StorageUnavailable`, `OutcomeUnknown`, …),
 * `interrupted` or `defect`.
 */
export const engineOperations: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.operations)

/** Seconds an engine operation took, by `operation` (from its start to its end, whatever the outcome). */
export const engineOperationDuration: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.operationDuration)

/**
 * Operations refused because of a lock (HTTP 423), by `operation` and `reason`:
 * `CreditLocked` (another lock is live), `LockKeyMismatch`, `LockNotHeld`, `LockExpired`.
 */
export const engineLockRefusals: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.lockRefusals)

/**
 * Commits the storage refused because the holder's revision had moved (another write came
 * first), by `operation`. Each is followed by a retry or, once the operation's attempts
 * (`maxAttempts`) are spent, by StorageUnavailable (or OutcomeUnknown, when a lost commit of the
 * call is still unsettled).
 */
export const engineCommitConflicts: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.conflicts)

/**
 * Operations planned again after a commit, by `operation` and `reason`: `conflict` (the
 * revision moved since a load), `stale_snapshot` (the revision moved since the cached snapshot),
 * `unknown_outcome` (a commit's reply was lost: the engine reads until it can tell whether it
 * landed, and plans again when it did not).
 */
export const engineCommitRetries: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.retries)

/**
 * Seconds `withLock` waited for a lock (from before its first attempt to the grant, or to the
 * refusal at its deadline), by the engine's clock, by `outcome`: `granted` or `refused`. A lock
 * granted at the first attempt records that attempt's own duration; other failures are not recorded.
 */
export const engineLockWait: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.lockWait)

/** Seconds a lock was held, from its grant to its release by `unlock` (by the engine's clock). */
export const engineLockHold: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.lockHold)

/** `ThresholdCrossed` events published, by `kind`: `percentage` or `fixed`. */
export const engineThresholdEvents: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.thresholds)
