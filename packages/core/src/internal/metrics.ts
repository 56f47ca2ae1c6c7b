/**
 * The engine's metric keys and their recording. A metric is made once per label set and updated
 * in place (`unsafeUpdate`, from inside an Effect step): Effect's tagged metrics build and hash a
 * new key on every update, which costs more than the operation being counted.
 *
 * @internal
 */
import { Metric, MetricBoundaries, MetricKey, type MetricKeyType, MetricLabel } from "effect"

const seconds = MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 })
const lockSeconds = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 20 })

export const keys = {
  operations: MetricKey.counter("creditlock_operations_total", {
    description: "Engine operations that ended, by operation and outcome",
    incremental: true,
  }),
  operationDuration: MetricKey.histogram(
    "creditlock_operation_duration_seconds",
    seconds,
    "Seconds an engine operation took, by operation",
  ),
  lockRefusals: MetricKey.counter("creditlock_lock_refusals_total", {
    description: "Operations refused because of a lock (423), by operation and reason",
    incremental: true,
  }),
  conflicts: MetricKey.counter("creditlock_commit_conflicts_total", {
    description: "Commits refused by the revision check (another write came first), by operation",
    incremental: true,
  }),
  retries: MetricKey.counter("creditlock_commit_retries_total", {
    description: "Operations planned again after a commit, by operation and reason",
    incremental: true,
  }),
  lockWait: MetricKey.histogram(
    "creditlock_lock_wait_seconds",
    lockSeconds,
    "Seconds withLock waited for a contended lock, by outcome",
  ),
  lockHold: MetricKey.histogram(
    "creditlock_lock_hold_seconds",
    lockSeconds,
    "Seconds a lock was held, from its grant to its release by unlock",
  ),
  thresholds: MetricKey.counter("creditlock_threshold_events_total", {
    description: "ThresholdCrossed events published, by kind",
    incremental: true,
  }),
} as const

/**
 * The metric of `key` for each combination of values of `labels`, made on first use and kept.
 * Label values are few and fixed (operation names, outcome tags), never an id or an amount.
 */
export const labelled = <Type extends MetricKeyType.MetricKeyType<number, unknown>>(
  key: MetricKey.MetricKey<Type>,
  ...labels: ReadonlyArray<string>
) => {
  const made = new Map<string, Metric.Metric<Type, number, unknown>>()
  return (...values: ReadonlyArray<string>): Metric.Metric<Type, number, unknown> => {
    const id = values.join("\u0000")
    let metric = made.get(id)
    if (metric === undefined) {
      const tagged = MetricKey.taggedWithLabels(
        key,
        labels.map((label, i) => MetricLabel.make(label, values[i] ?? "")),
      )
      metric = Metric.fromMetricKey(tagged) as unknown as Metric.Metric<Type, number, unknown>
      made.set(id, metric)
    }
    return metric
  }
}

const none: ReadonlyArray<MetricLabel.MetricLabel> = []

/** Adds `value` to a counter or records it in a histogram. Call from inside an Effect step. */
export const record = (
  metric: { readonly unsafeUpdate: (input: number, extraTags: ReadonlyArray<MetricLabel.MetricLabel>) => void },
  value: number,
): void => metric.unsafeUpdate(value, none)

export const operations = labelled(keys.operations, "operation", "outcome")
export const operationDuration = labelled(keys.operationDuration, "operation")
export const lockRefusals = labelled(keys.lockRefusals, "operation", "reason")
export const conflicts = labelled(keys.conflicts, "operation")
export const retries = labelled(keys.retries, "operation", "reason")
export const lockWait = labelled(keys.lockWait, "outcome")
export const lockHold = labelled(keys.lockHold)
export const thresholds = labelled(keys.thresholds, "kind")
