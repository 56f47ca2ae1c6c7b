/**
 * The HTTP API's metrics, as Effect `Metric`s recorded by every form of the API (standalone,
 * mounted, web handler) in the runtime's default registry. `route` is the route template
 * (`/credit/v1/customers/:customerId/…`, or `(unmatched)`), never a path with ids.
 *
 * @module
 */
import { Metric } from "effect"
import { keys } from "./internal/metricKeys.js"

/** Requests answered, by `method`, `route` and `status`. */
export const requests = Metric.fromMetricKey(keys.requests)

/** Seconds from a request's arrival to its response, by `method` and `route`. */
export const requestDuration = Metric.fromMetricKey(keys.requestDuration)
