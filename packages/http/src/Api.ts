/**
 * The HTTP API of creditlock, defined once with @effect/platform's `HttpApi`. The server, the
 * OpenAPI document (`/openapi.json`), the Swagger UI (`/docs`) and the typed client are all
 * derived from this definition.
 *
 * Groups:
 * - `credit` — Bento's credit API: read, lock, modify, unlock; plus opening a holder and its journal;
 * - `customer` — Trackfinity's administrative customer unlock;
 * - `billingCare` — Oracle Billing Care / BRM's credit limits of a balance group;
 * - `ops` — health (public).
 *
 * @module
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "./Auth.js"
import {
  AmountOutOfRangeProblem,
  CreditLimitExceededProblem,
  CreditLockedProblem,
  DuplicateCreditTypeProblem,
  ForbiddenProblem,
  HolderNotFoundProblem,
  IdempotencyConflictProblem,
  InsufficientCreditProblem,
  InternalErrorProblem,
  InvalidRequestProblem,
  LockExpiredProblem,
  LockKeyMismatchProblem,
  LockNotHeldProblem,
  OutcomeUnknownProblem,
  PayloadTooLargeProblem,
  RouteNotFoundProblem,
  ShuttingDownProblem,
  StorageUnavailableProblem,
  UnlockIncompleteProblem,
  UnsupportedMediaTypeProblem,
  UnsupportedResourceProblem,
} from "./Problem.js"
import {
  BalanceGroupPath,
  CreditLimitBody,
  CreditLimitsResponse,
  CreditResponse,
  CustomerUnlockBody,
  ExtendBody,
  ExtendResponse,
  HealthResponse,
  HolderAlreadyOpen,
  HolderOpened,
  HolderPath,
  JournalParams,
  JournalResponse,
  LockHeaders,
  LockResponse,
  ModifyBody,
  ModifyHeaders,
  ModifyResponse,
  OpenHolderBody,
  UnlockBody,
} from "./Representation.js"

/** The path of one holder. */
const holder = "/credit/v1/customers/:customerId/:holderType/:holderId" as const

/** The path of a balance group's credit limits. */
const creditLimit = "/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/:id" as const

/** Bento's credit API, plus opening a holder and reading its journal. */
export class CreditGroup extends HttpApiGroup.make("credit")
  .add(
    HttpApiEndpoint.get("getCredit", holder)
      .setPath(HolderPath)
      .addSuccess(CreditResponse)
      .addError(HolderNotFoundProblem)
      .annotateContext(
        OpenApi.annotations({ summary: "The holder's current credit, one entry per currency (minor units)" }),
      ),
  )
  .add(
    HttpApiEndpoint.put("openHolder", holder)
      .setPath(HolderPath)
      .setPayload(OpenHolderBody)
      .addSuccess(HolderOpened, { status: 201 })
      .addSuccess(HolderAlreadyOpen, { status: 200 })
      .addError(IdempotencyConflictProblem)
      .addError(OutcomeUnknownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Open a holder (idempotent): 201 when created, 200 when it was open already",
          description:
            "The body may be empty. There is no implicit balance group: a holder opened without balanceGroupId has none (balanceGroupId: null in the response) and the Billing Care routes cannot reach it. balanceGroupId claims a global alias, unique among all holders (first claim wins): only an administrator credential may send one (403 otherwise); an alias another holder claimed → 409, and nothing is opened. Re-opening a holder that has no alias with one attaches it; with another alias than the one it has → 409.",
        }),
      ),
  )
  .add(
    HttpApiEndpoint.put("lock", `${holder}/_lock`)
      .setPath(HolderPath)
      .setHeaders(LockHeaders)
      .addSuccess(LockResponse, { status: 201 })
      .addError(HolderNotFoundProblem)
      .addError(CreditLockedProblem)
      .addError(OutcomeUnknownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Lock the credit; the key is needed to modify and unlock",
          description:
            "A live lock held by anyone → 423 CREDIT_LOCKED (Retry-After: seconds until it expires). Locks expire (120 s by default). With an Idempotency-Key, a retry while the lock it granted lives answers 201 with that same lock: a lost response does not lock the caller out. Each grant carries a fencing token that grows with every grant on the holder.",
        }),
      ),
  )
  .add(
    HttpApiEndpoint.put("modify", `${holder}/_modify`)
      .setPath(HolderPath)
      .setHeaders(ModifyHeaders)
      .setPayload(ModifyBody)
      .addSuccess(ModifyResponse)
      .addError(HolderNotFoundProblem)
      .addError(IdempotencyConflictProblem)
      .addError(DuplicateCreditTypeProblem)
      .addError(InsufficientCreditProblem)
      .addError(CreditLimitExceededProblem)
      .addError(AmountOutOfRangeProblem)
      .addError(LockNotHeldProblem)
      .addError(LockKeyMismatchProblem)
      .addError(LockExpiredProblem)
      .addError(OutcomeUnknownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Apply modifications all-or-nothing under the lock (X-Lock-Key)",
          description:
            "Values are in the currency's minor unit. Send an Idempotency-Key (recommended): a retry of the same request with it returns the original result without applying it again, even after the lock is gone; the same key with a different request → 409. A 503 OUTCOME_UNKNOWN means the modification may or may not have been applied: retry with the same Idempotency-Key (it is then applied exactly once), or read the journal for the entryId the problem names. A 503 STORAGE_UNAVAILABLE means it was not applied.",
        }),
      ),
  )
  .add(
    HttpApiEndpoint.put("extend", `${holder}/_extend`)
      .setPath(HolderPath)
      .setPayload(ExtendBody)
      .addSuccess(ExtendResponse)
      .addError(HolderNotFoundProblem)
      .addError(LockNotHeldProblem)
      .addError(LockKeyMismatchProblem)
      .addError(LockExpiredProblem)
      .addError(OutcomeUnknownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Extend the live lock held with this key by the lock TTL from now",
          description:
            "The new expiry is now + the lock TTL (120 s by default), but never more than the lock's total lifetime from its grant (10 minutes by default) and never earlier than it already was; the fencing token stays the same. Only a live lock can be extended: an expired one is never revived (423 LOCK_EXPIRED: lock again). Another live lock → 423 LOCK_KEY_MISMATCH; none → 423 LOCK_NOT_HELD.",
        }),
      ),
  )
  .add(
    HttpApiEndpoint.put("unlock", `${holder}/_unlock`)
      .setPath(HolderPath)
      .setPayload(UnlockBody)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(HolderNotFoundProblem)
      .addError(LockKeyMismatchProblem)
      .addError(OutcomeUnknownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Release the lock held with this key (no live lock → 204 as well)",
        }),
      ),
  )
  .add(
    HttpApiEndpoint.get("journal", `${holder}/journal`)
      .setPath(HolderPath)
      .setUrlParams(JournalParams)
      .addSuccess(JournalResponse)
      .addError(HolderNotFoundProblem)
      .annotateContext(OpenApi.annotations({ summary: "A page of the holder's journal, oldest first" })),
  )
  .addError(ForbiddenProblem)
  .middleware(Authentication)
  .annotateContext(OpenApi.annotations({ title: "credit", description: "Credit holders, locks and modifications" })) {}

/** Trackfinity's administrative customer unlock. */
export class CustomerGroup extends HttpApiGroup.make("customer")
  .add(
    HttpApiEndpoint.patch("unlockCustomer", "/customer/unlock")
      .setPayload(
        Schema.Union(CustomerUnlockBody, HttpApiSchema.withEncoding(CustomerUnlockBody, { kind: "UrlParams" })),
      )
      .addSuccess(Schema.Literal(true))
      .addError(HolderNotFoundProblem)
      .addError(IdempotencyConflictProblem)
      .addError(OutcomeUnknownProblem)
      .addError(UnlockIncompleteProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Release every live lock of a customer, found by customer_id, subscription_id or orderid",
          description:
            "Form-encoded or JSON. Nothing found → 404; a lookup matching several customers → 409, nothing unlocked. A credential limited to some customers may unlock by customer_id only. A failure part-way → 503 UNLOCK_INCOMPLETE listing the holders released, those not released (pending) and those whose release is unknown (unknown): repeat the same request to release the rest (holders already released are not released again).",
        }),
      ),
  )
  .addError(ForbiddenProblem)
  .middleware(Authentication)
  .annotateContext(OpenApi.annotations({ title: "customer", description: "Administrative customer operations" })) {}

/** Oracle Billing Care / BRM credit limits of a balance group. */
export class BillingCareGroup extends HttpApiGroup.make("billingCare")
  .add(
    HttpApiEndpoint.post("setCreditLimits", creditLimit)
      .setPath(BalanceGroupPath)
      .setPayload(CreditLimitBody)
      .addSuccess(Schema.Literal("Ok").pipe(HttpApiSchema.withEncoding({ kind: "Text" })), { status: 201 })
      .addError(HolderNotFoundProblem)
      .addError(IdempotencyConflictProblem)
      .addError(UnsupportedResourceProblem)
      .addError(AmountOutOfRangeProblem)
      .addError(OutcomeUnknownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary: "Create or change the credit limits of one resource (currency) of a balance group",
          description:
            "BRM's body; amounts in major units (number or decimal string); resourceId is the ISO 4217 numeric code. dynamicFloor and rollUp are stored and returned unchanged. {id} is the alias a holder claimed when it was opened with a balanceGroupId; a holder opened without one is not reachable here.",
        }),
      ),
  )
  .add(
    HttpApiEndpoint.get("getCreditLimits", creditLimit)
      .setPath(BalanceGroupPath)
      .addSuccess(CreditLimitsResponse)
      .addError(HolderNotFoundProblem)
      .addError(IdempotencyConflictProblem)
      .annotateContext(
        OpenApi.annotations({ summary: "The balance group's credit limits and the limit in force now" }),
      ),
  )
  .addError(ForbiddenProblem)
  .middleware(Authentication)
  .annotateContext(OpenApi.annotations({ title: "billing-care", description: "Credit limits (Oracle BRM)" })) {}

/** Operations: health (no credential needed). */
export class OpsGroup extends HttpApiGroup.make("ops")
  .add(
    HttpApiEndpoint.get("health", "/healthz")
      .addSuccess(HealthResponse)
      .annotateContext(OpenApi.annotations({ summary: "Liveness: 200 while the process serves requests" })),
  )
  .add(
    HttpApiEndpoint.get("ready", "/readyz")
      .addSuccess(HealthResponse)
      .addError(ShuttingDownProblem)
      .annotateContext(
        OpenApi.annotations({
          summary:
            "Readiness: 200 when the storage answers and the server is not stopping; 503 STORAGE_UNAVAILABLE or SHUTTING_DOWN otherwise",
        }),
      ),
  )
  .annotateContext(OpenApi.annotations({ title: "ops", description: "Liveness and readiness" })) {}

/** Adds `api-username` to the OpenAPI document: it accompanies `api-key` (both are required together). */
const documentApiUsername = (spec: Record<string, unknown>): Record<string, unknown> => {
  const components = (spec.components ?? {}) as { securitySchemes?: Record<string, unknown> }
  const securitySchemes = {
    ...components.securitySchemes,
    apiUsername: {
      type: "apiKey",
      name: "api-username",
      in: "header",
      description: "The credential's username; sent together with 'api-key'.",
    },
  }
  const paths = (spec.paths ?? {}) as Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>
  const nextPaths = Object.fromEntries(
    Object.entries(paths).map(([path, item]) => [
      path,
      Object.fromEntries(
        Object.entries(item).map(([method, op]) => [
          method,
          op.security === undefined
            ? op
            : {
                ...op,
                security: op.security.map((requirement) =>
                  "apiKey" in requirement ? { ...requirement, apiUsername: [] } : requirement,
                ),
              },
        ]),
      ),
    ]),
  )
  return { ...spec, components: { ...components, securitySchemes }, paths: nextPaths }
}

const decodeErrorRef = "#/components/schemas/HttpApiDecodeError"

/**
 * Removes @effect/platform's own decode-error body from the document: the server never sends it
 * (every malformed request is answered with the 400 problem body, INVALID_REQUEST).
 */
const withoutDecodeError = (spec: Record<string, unknown>): Record<string, unknown> => {
  type Media = { schema?: { anyOf?: Array<{ $ref?: string }>; $ref?: string } }
  type Response = { description?: string; content?: Record<string, Media> }
  const paths = (spec.paths ?? {}) as Record<string, Record<string, { responses?: Record<string, Response> }>>
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      const bad = op.responses?.["400"]
      if (bad === undefined) continue
      for (const media of Object.values(bad.content ?? {})) {
        const anyOf = media.schema?.anyOf?.filter((s) => s.$ref !== decodeErrorRef)
        if (anyOf !== undefined) media.schema = anyOf.length === 1 ? (anyOf[0] ?? {}) : { anyOf }
      }
      bad.description = "The request is malformed: path, query, headers or body (code INVALID_REQUEST)"
    }
  }
  const components = (spec.components ?? {}) as { schemas?: Record<string, unknown> }
  const {
    HttpApiDecodeError: _decodeError,
    Issue: _issue,
    PropertyKey: _propertyKey,
    ...schemas
  } = components.schemas ?? {}
  return { ...spec, components: { ...components, schemas } }
}

/**
 * Describes each response that stands for several problems (503: STORAGE_UNAVAILABLE,
 * OUTCOME_UNKNOWN, …) by all of them: @effect/platform keeps only the first one's description,
 * and a client must be able to tell "not applied" from "may have been applied".
 */
const describeEveryProblem = (spec: Record<string, unknown>): Record<string, unknown> => {
  type Response = { description?: string; content?: Record<string, { schema?: { anyOf?: Array<{ $ref?: string }> } }> }
  const components = (spec.components ?? {}) as { schemas?: Record<string, { description?: string }> }
  const paths = (spec.paths ?? {}) as Record<string, Record<string, { responses?: Record<string, Response> }>>
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      for (const response of Object.values(op.responses ?? {})) {
        const refs = response.content?.["application/json"]?.schema?.anyOf?.map((s) => s.$ref) ?? []
        const descriptions = refs.map((ref) =>
          ref?.startsWith("#/components/schemas/")
            ? components.schemas?.[ref.slice("#/components/schemas/".length)]?.description
            : undefined,
        )
        if (descriptions.length > 1 && descriptions.every((d) => d !== undefined)) {
          response.description = descriptions.join("; ")
        }
      }
    }
  }
  return spec
}

/**
 * Declares the `Retry-After` header (seconds) on every 423, 429 and 503 response, and the
 * `X-Request-Id` header on every response: @effect/platform declares no response headers.
 */
const declareResponseHeaders = (spec: Record<string, unknown>): Record<string, unknown> => {
  type Response = { headers?: Record<string, unknown> }
  const retryAfter = {
    description:
      "Seconds to wait before retrying (423: until the lock in the way expires, 0 when none is; 429: until the rate limit allows; 503: the server's storage retry hint)",
    schema: { type: "integer", minimum: 0 },
  }
  const requestId = {
    description:
      "The request's id: the client's X-Request-Id when it is 1–128 of A-Z a-z 0-9 . _ : -, else a generated one",
    schema: { type: "string" },
  }
  const paths = (spec.paths ?? {}) as Record<string, Record<string, { responses?: Record<string, Response> }>>
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        response.headers = {
          ...response.headers,
          "X-Request-Id": requestId,
          ...(status === "423" || status === "429" || status === "503" ? { "Retry-After": retryAfter } : {}),
        }
      }
    }
  }
  return spec
}

/** The whole API. Errors every route may answer are declared once, here. */
export class CreditLockApi extends HttpApi.make("creditlock")
  .add(CreditGroup)
  .add(CustomerGroup)
  .add(BillingCareGroup)
  .add(OpsGroup)
  .addError(InvalidRequestProblem)
  .addError(RouteNotFoundProblem)
  .addError(PayloadTooLargeProblem)
  .addError(UnsupportedMediaTypeProblem)
  .addError(InternalErrorProblem)
  .addError(StorageUnavailableProblem)
  .annotateContext(
    OpenApi.annotations({
      title: "creditlock",
      version: "0.1.0",
      description:
        "Credit holders, pessimistic credit locks, monetary modifications with an immutable journal, and credit limits. Every error answers with { error: [ { status, title, detail, code } ] }. Request bodies are JSON (or form-encoded where documented), at most 64 KiB, nested at most 64 levels deep. A write ends in one of three outcomes: applied (2xx); not applied (503 STORAGE_UNAVAILABLE, or any 4xx: nothing changed); unknown (503 OUTCOME_UNKNOWN: retry with the same Idempotency-Key, or read the journal).",
      license: { name: "MIT", url: "https://opensource.org/licenses/MIT" },
      transform: (spec) => declareResponseHeaders(describeEveryProblem(withoutDecodeError(documentApiUsername(spec)))),
    }),
  ) {}
