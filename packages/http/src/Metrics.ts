/**
 * The HTTP API's metrics, as Effect `Metric`s recorded by every form of the API (standalone,
 * mounted, web handler) in the runtime's default registry. `route` is the route template
 * (`/credit/v1/customers/:customerId/…`, or `(unmatched)`), never a path with ids.
 *
 * @module
 */
import { Metric, MetricBoundaries } from "effect"

/** Requests answered, by `method`, `route` and `status`. */
export const requests = Metric.counter("creditlock_http_requests_total", {
  description: "HTTP requests answered, by method, route template and status",
  incremental: true,
})

/** Seconds from a request's arrival to its response, by `method` and `route`. */
export const requestDuration = Metric.histogram(
  "creditlock_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 16 }),
  "Seconds from a request's arrival to its response, by method and route template",
)
