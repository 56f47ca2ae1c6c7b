/**
 * Whether the server should receive new requests: `GET /readyz` answers 503 SHUTTING_DOWN once
 * the server has started stopping, and 503 STORAGE_UNAVAILABLE while the storage does not answer;
 * `GET /healthz` only says the process serves. A standalone server (`Server.layerServer`) starts
 * draining when it is released; a mounted API is never draining unless the caller provides its
 * own `Readiness`.
 *
 * @module
 */
import { Context } from "effect"

/** The server's draining state, read by the readiness probe on every request. */
export class Readiness extends Context.Reference<Readiness>()("@creditlock/http/Readiness", {
  defaultValue: (): { readonly draining: () => boolean } => ({ draining: () => false }),
}) {}
