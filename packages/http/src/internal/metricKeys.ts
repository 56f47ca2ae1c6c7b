/**
 * The keys of the HTTP API's metrics (`Metrics`), shared by the public metrics and by the guard,
 * which records them with their labels on metrics made once per label set.
 *
 * @internal
 */
import { MetricBoundaries, MetricKey } from "effect"

/** The keys, by metric. */
export const keys = {
  requests: MetricKey.counter("creditlock_http_requests_total", {
    description: "HTTP requests answered, by method, route template and status",
    incremental: true,
  }),
  requestDuration: MetricKey.histogram(
    "creditlock_http_request_duration_seconds",
    MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 }),
    "Seconds from a request's arrival to its response, by method and route template",
  ),
}
