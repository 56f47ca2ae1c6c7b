/**
 * Problem responses: every failure the HTTP API answers with, in one body shape,
 * `{ "error": [ { "status": "423", "title": "Locked", "detail": "…", "code": "LOCK_KEY_MISMATCH" } ] }`.
 *
 * The engine's errors (from @creditlock/core) keep their status, title and code; this module adds
 * the few failures only HTTP has (an unknown route, an oversize or unreadable body, a defect) and
 * one schema per error whose encoded side is the problem body, so that the OpenAPI document shows
 * the bodies clients receive and the typed client decodes them back into the same error classes.
 *
 * Two 503s say more than "retry later", because retrying blindly could be wrong:
 * - `OUTCOME_UNKNOWN`: the write may or may not have been applied. The detail tells the caller to
 *   retry with the same `Idempotency-Key` or to read the journal; the item carries `entryId`, the
 *   journal entry the write would have appended, when there is one.
 * - `UNLOCK_INCOMPLETE`: a customer unlock released some holders but not all; the item lists
 *   `released` (with their journal entries), `pending` holders (not released) and `unknown` ones
 *   (perhaps released), and repeating the request releases the rest.
 *
 * @module
 */

import {
  AmountOutOfRange,
  CreditLimitExceeded,
  CreditLocked,
  DuplicateCreditType,
  Forbidden,
  HolderNotFound,
  IdempotencyConflict,
  InsufficientCredit,
  InvalidRequest,
  LockExpired,
  LockKeyMismatch,
  LockNotHeld,
  OutcomeUnknown,
  RateLimited,
  StorageUnavailable,
  Unauthorized,
  UnlockIncomplete,
  UnsupportedResource,
} from "@creditlock/core"
import { HttpApiSchema, HttpServerResponse } from "@effect/platform"
import { Schema } from "effect"
import { HolderJson, holderJson } from "./Representation.js"

/** Fields every HTTP-only error carries: a human-readable explanation of this occurrence. */
const fields = { detail: Schema.String }

/** No route matches the method and path (404). */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", fields) {
  get status(): 404 {
    return 404
  }
  get title(): string {
    return "Not Found"
  }
  get code(): string {
    return "ROUTE_NOT_FOUND"
  }
}

/** The request body is larger than the server accepts (413). */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", fields) {
  get status(): 413 {
    return 413
  }
  get title(): string {
    return "Content Too Large"
  }
  get code(): string {
    return "PAYLOAD_TOO_LARGE"
  }
}

/** The request body has a media type no route accepts (415). */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", fields) {
  get status(): 415 {
    return 415
  }
  get title(): string {
    return "Unsupported Media Type"
  }
  get code(): string {
    return "UNSUPPORTED_MEDIA_TYPE"
  }
}

/**
 * The server is stopping: it finishes the requests in flight but should receive no new ones, so
 * its readiness probe answers 503 (SHUTTING_DOWN); another instance should take the traffic.
 */
export class ShuttingDown extends Schema.TaggedError<ShuttingDown>()("ShuttingDown", fields) {
  get status(): 503 {
    return 503
  }
  get title(): string {
    return "Service Unavailable"
  }
  get code(): string {
    return "SHUTTING_DOWN"
  }
}

/** A defect: a bug, never a consequence of the request. The body reveals nothing of it (500). */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", fields) {
  get status(): 500 {
    return 500
  }
  get title(): string {
    return "Internal Server Error"
  }
  get code(): string {
    return "INTERNAL_ERROR"
  }
}

/** Anything that can be answered as a problem: a tagged error with status, title, code and detail. */
export interface ProblemLike {
  readonly _tag: string
  readonly status: number
  readonly title: string
  readonly code: string
  readonly detail: string
}

/** Whether `u` is an error that carries its own status, title, code and detail. */
export const isProblemLike = (u: unknown): u is ProblemLike =>
  typeof u === "object" &&
  u !== null &&
  "_tag" in u &&
  typeof u._tag === "string" &&
  "status" in u &&
  typeof u.status === "number" &&
  Number.isInteger(u.status) &&
  u.status >= 400 &&
  u.status <= 599 &&
  "title" in u &&
  typeof u.title === "string" &&
  "code" in u &&
  typeof u.code === "string" &&
  "detail" in u &&
  typeof u.detail === "string"

/**
 * One item of a problem body. `retryAfter` (seconds) mirrors the `Retry-After` header on 423, 429
 * and 503. Some errors carry further members (`expiresAt` on CREDIT_LOCKED and LOCK_KEY_MISMATCH,
 * `expiredAt` on LOCK_EXPIRED, `entryId` on OUTCOME_UNKNOWN; `customerId`, `released`,
 * `pending` and `unknown` on UNLOCK_INCOMPLETE).
 */
export const ProblemItem = Schema.Struct(
  {
    status: Schema.String,
    title: Schema.String,
    detail: Schema.String,
    code: Schema.String,
    retryAfter: Schema.optional(Schema.Int),
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown }),
).annotations({ identifier: "ProblemItem" })

/** The body of every error response: `{ "error": [ProblemItem] }`. */
export const ProblemBody = Schema.Struct({ error: Schema.Array(ProblemItem) }).annotations({
  identifier: "Problem",
})

/** The body of every error response. */
export type ProblemBody = typeof ProblemBody.Type

/**
 * Seconds a client should wait before retrying, for the errors that have such a hint: 429, every
 * 503, and every 423 — until the live lock in the way expires (CREDIT_LOCKED, LOCK_KEY_MISMATCH),
 * or 0 when no live lock is in the way (LOCK_NOT_HELD, LOCK_EXPIRED: lock again at once).
 */
export const retryAfterSeconds = (
  error: ProblemLike,
  storageRetrySeconds: number,
  now: number = Date.now(),
): number | undefined => {
  if (error instanceof RateLimited) return Math.max(1, Math.ceil(error.retryAfterSeconds))
  if (error instanceof CreditLocked || error instanceof LockKeyMismatch) {
    return error.expiresAt === undefined ? 0 : Math.max(0, Math.ceil((error.expiresAt.getTime() - now) / 1000))
  }
  if (error instanceof LockNotHeld || error instanceof LockExpired) return 0
  if (
    error instanceof StorageUnavailable ||
    error instanceof OutcomeUnknown ||
    error instanceof UnlockIncomplete ||
    error instanceof ShuttingDown
  ) {
    return storageRetrySeconds
  }
  return undefined
}

/**
 * The detail a problem shows. For the two 503s whose retry needs care it is written here, in the
 * API's own terms (Idempotency-Key, the journal route, repeating the request), rather than the
 * engine's.
 */
export const problemDetail = (error: ProblemLike): string => {
  if (error instanceof OutcomeUnknown) {
    const unconfirmed =
      "the write was sent to the storage but its outcome could not be confirmed: it may or may not have been applied."
    return error.entryId === undefined
      ? `${unconfirmed} Read the holder before retrying. After _lock, retry with the same Idempotency-Key: while the lock it granted lives, the retry returns it; without one, a lock may now be held whose key nobody has: it expires with its TTL, or PATCH /customer/unlock releases it. _extend and _unlock can simply be repeated.`
      : `${unconfirmed} Retry the same request with the same Idempotency-Key (a retry returns the original result if the write was applied, and applies it once if it was not), or read the holder's journal for entry ${error.entryId} to see whether it was applied.`
  }
  if (error instanceof UnlockIncomplete) {
    return `the customer's locks were released on ${error.released.length} holder(s), not released on ${error.pending.length} (listed in "pending": nothing was written) and perhaps released on ${error.unknown.length} (listed in "unknown": the release was sent but not confirmed). Repeat the same request to release the rest; holders already released are not released again.`
  }
  return error.detail
}

/** The members a problem item carries beyond status, title, detail, code and retryAfter. */
const problemMembers = (error: ProblemLike): Record<string, unknown> => {
  if (error instanceof CreditLocked || error instanceof LockKeyMismatch) {
    return error.expiresAt === undefined ? {} : { expiresAt: error.expiresAt.toISOString() }
  }
  if (error instanceof LockExpired) return { expiredAt: error.expiredAt.toISOString() }
  if (error instanceof OutcomeUnknown) return error.entryId === undefined ? {} : { entryId: error.entryId }
  if (error instanceof UnlockIncomplete) {
    return {
      customerId: error.customerId,
      released: error.released.map((r) => ({ holder: holderJson(r.holder), entryId: r.entryId })),
      pending: error.pending.map(holderJson),
      unknown: error.unknown.map(holderJson),
    }
  }
  return {}
}

/** The problem body of an error. */
export const problemBody = (error: ProblemLike, retryAfter?: number): ProblemBody => ({
  error: [
    {
      status: String(error.status),
      title: error.title,
      detail: problemDetail(error),
      code: error.code,
      ...(retryAfter === undefined ? {} : { retryAfter }),
      ...problemMembers(error),
    },
  ],
})

/**
 * The HTTP response for an error: its status, the problem body, `Retry-After` on 429 and 503,
 * and `WWW-Authenticate` on 401.
 */
export const problemResponse = (error: ProblemLike, storageRetrySeconds = 1): HttpServerResponse.HttpServerResponse => {
  const retryAfter = retryAfterSeconds(error, storageRetrySeconds)
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter)
  if (error.status === 401) headers["www-authenticate"] = 'Bearer realm="creditlock"'
  return HttpServerResponse.unsafeJson(problemBody(error, retryAfter), { status: error.status, headers })
}

const baseItemFields = {
  status: Schema.String,
  title: Schema.String,
  detail: Schema.String,
  code: Schema.String,
  retryAfter: Schema.optional(Schema.Int),
}

/** An item as a problem schema decodes it: the base members and the error's own (`extra`). */
type ItemOf<Extra extends Schema.Struct.Fields> = Schema.Struct.Type<typeof baseItemFields> & Schema.Struct.Type<Extra>

/**
 * The schema of one error as a problem response: encoded, the problem body with this error's
 * status and code, exactly as {@link problemBody} writes it; decoded, an instance of the error
 * class. Annotated with the HTTP status. Errors whose items carry further members declare them in
 * `extra` (whose types must equal their encoded forms), with sample values to build the sample
 * error from.
 */
const problem = <Self extends ProblemLike, I, Extra extends Schema.Struct.Fields = Record<never, never>>(
  errorClass: Schema.Schema<Self, I>,
  make: (detail: string, item: ItemOf<Extra>) => Self,
  description: string,
  extra?: { readonly fields: Extra; readonly sample: Schema.Struct.Type<Extra> },
) => {
  const sample = make(
    "",
    Object.assign({ status: "", title: "", detail: "", code: "" }, extra?.sample) as ItemOf<Extra>,
  )
  // Typed by hand: TypeScript cannot follow a struct built from generic fields.
  const Body = Schema.Struct({
    error: Schema.Tuple(
      [
        Schema.Struct({
          ...baseItemFields,
          status: Schema.Literal(String(sample.status)),
          code: Schema.Literal(sample.code),
          ...extra?.fields,
        }),
      ],
      Schema.Unknown,
    ),
  }) as unknown as Schema.Schema<{ readonly error: readonly [ItemOf<Extra>, ...Array<unknown>] }>
  return Schema.transform(Body, Schema.typeSchema(errorClass), {
    strict: true,
    decode: ({ error: [item] }) => make(item.detail, item),
    encode: (error) => problemBody(error, retryAfterSeconds(error, 1)) as unknown as typeof Body.Type,
  }).annotations({
    identifier: `${sample._tag}Problem`,
    description: `${description} (code ${sample.code})`,
    ...HttpApiSchema.annotations({ status: sample.status }),
  })
}

/** 400 INVALID_REQUEST as a problem response. */
export const InvalidRequestProblem = problem(
  InvalidRequest,
  (detail) => new InvalidRequest({ detail }),
  "The request is malformed: path, query, headers or body",
)
/** 401 UNAUTHORIZED as a problem response. */
export const UnauthorizedProblem = problem(
  Unauthorized,
  (detail) => new Unauthorized({ detail }),
  "No credential, or one that is not known",
)
/** 403 FORBIDDEN as a problem response. */
export const ForbiddenProblem = problem(
  Forbidden,
  (detail) => new Forbidden({ detail }),
  "The credential may not act on this customer",
)
/** 404 HOLDER_NOT_FOUND as a problem response. */
export const HolderNotFoundProblem = problem(
  HolderNotFound,
  (detail) => new HolderNotFound({ detail }),
  "The holder, customer, subscription, order or balance group does not exist",
)
/** 404 ROUTE_NOT_FOUND as a problem response. */
export const RouteNotFoundProblem = problem(
  RouteNotFound,
  (detail) => new RouteNotFound({ detail }),
  "No route matches the method and path",
)
/** 409 IDEMPOTENCY_CONFLICT as a problem response. */
export const IdempotencyConflictProblem = problem(
  IdempotencyConflict,
  (detail) => new IdempotencyConflict({ detail }),
  "The request conflicts with what is stored",
)
/** 413 PAYLOAD_TOO_LARGE as a problem response. */
export const PayloadTooLargeProblem = problem(
  PayloadTooLarge,
  (detail) => new PayloadTooLarge({ detail }),
  "The request body is larger than 64 KiB",
)
/** 415 UNSUPPORTED_MEDIA_TYPE as a problem response. */
export const UnsupportedMediaTypeProblem = problem(
  UnsupportedMediaType,
  (detail) => new UnsupportedMediaType({ detail }),
  "The request body's media type is not accepted",
)
/** 422 DUPLICATE_CREDIT_TYPE as a problem response. */
export const DuplicateCreditTypeProblem = problem(
  DuplicateCreditType,
  (detail) => new DuplicateCreditType({ detail }),
  "The same credit appears twice in one request",
)
/** 422 INSUFFICIENT_CREDIT as a problem response. */
export const InsufficientCreditProblem = problem(
  InsufficientCredit,
  (detail) => new InsufficientCredit({ detail }),
  "A debit would leave the credit below 0",
)
/** 422 CREDIT_LIMIT_EXCEEDED as a problem response. */
export const CreditLimitExceededProblem = problem(
  CreditLimitExceeded,
  (detail) => new CreditLimitExceeded({ detail }),
  "A debit would leave the credit below the credit limit",
)
/** 422 UNSUPPORTED_RESOURCE as a problem response. */
export const UnsupportedResourceProblem = problem(
  UnsupportedResource,
  (detail) => new UnsupportedResource({ detail }),
  "The resource is not an ISO 4217 currency",
)
/** 422 AMOUNT_OUT_OF_RANGE as a problem response. */
export const AmountOutOfRangeProblem = problem(
  AmountOutOfRange,
  (detail) => new AmountOutOfRange({ detail }),
  "A value would leave the safe integer range",
)
/** An instant member of a problem item (ISO 8601). */
const instant = (text: string | undefined) => (text === undefined ? undefined : new Date(text))

/** 423 CREDIT_LOCKED as a problem response; `expiresAt` and `Retry-After` say when the lock expires. */
export const CreditLockedProblem = problem(
  CreditLocked,
  (detail, item) => new CreditLocked({ detail, expiresAt: instant(item.expiresAt) }),
  "The credit is locked by someone until expiresAt (Retry-After: the seconds until then)",
  { fields: { expiresAt: Schema.optional(Schema.String) }, sample: {} },
)
/** 423 LOCK_NOT_HELD as a problem response. */
export const LockNotHeldProblem = problem(
  LockNotHeld,
  (detail) => new LockNotHeld({ detail }),
  "No live lock is held on the credit",
)
/** 423 LOCK_KEY_MISMATCH as a problem response; `expiresAt` says when the live lock expires. */
export const LockKeyMismatchProblem = problem(
  LockKeyMismatch,
  (detail, item) => new LockKeyMismatch({ detail, expiresAt: instant(item.expiresAt) }),
  "The lock key is not the live lock's key; that lock expires at expiresAt (Retry-After: the seconds until then)",
  { fields: { expiresAt: Schema.optional(Schema.String) }, sample: {} },
)
/** 423 LOCK_EXPIRED as a problem response: the caller's own lock ran out at `expiredAt`. */
export const LockExpiredProblem = problem(
  LockExpired,
  (detail, item) => new LockExpired({ detail, expiredAt: new Date(item.expiredAt) }),
  "The lock this key was granted has expired (at expiredAt): lock again; nothing was changed",
  { fields: { expiredAt: Schema.String }, sample: { expiredAt: new Date(0).toISOString() } },
)
/** 429 RATE_LIMITED as a problem response; `Retry-After` says when to retry. */
export const RateLimitedProblem = problem(
  RateLimited,
  (detail, item) => new RateLimited({ detail, retryAfterSeconds: item.retryAfter ?? 1 }),
  "Too many requests for this credential",
)
/** 503 STORAGE_UNAVAILABLE as a problem response; `Retry-After` says when to retry. */
export const StorageUnavailableProblem = problem(
  StorageUnavailable,
  (detail) => new StorageUnavailable({ detail }),
  "The storage backend is unavailable; nothing was changed, so retrying is safe",
)
/** 503 SHUTTING_DOWN as a problem response (the readiness probe of a server that is stopping). */
export const ShuttingDownProblem = problem(
  ShuttingDown,
  (detail) => new ShuttingDown({ detail }),
  "The server is stopping: it finishes the requests in flight; send new ones to another instance",
)
/** 503 OUTCOME_UNKNOWN as a problem response, with `entryId` when the write appends a journal entry. */
export const OutcomeUnknownProblem = problem(
  OutcomeUnknown,
  (detail, item) => new OutcomeUnknown({ detail, ...(item.entryId === undefined ? {} : { entryId: item.entryId }) }),
  "The write may or may not have been applied: retry with the same Idempotency-Key, or read the holder's journal (entryId names the entry the write would have appended)",
  { fields: { entryId: Schema.optional(Schema.String) }, sample: {} },
)

const holderRefOf = (customerId: string, holder: typeof HolderJson.Type) => ({
  customerId,
  holderType: holder.type === "contract" ? ("contracts" as const) : ("customers" as const),
  holderId: holder.id,
})

/** 503 UNLOCK_INCOMPLETE as a problem response, listing the holders released, not released (pending) and unknown. */
export const UnlockIncompleteProblem = problem(
  UnlockIncomplete,
  (detail, item) =>
    new UnlockIncomplete({
      detail,
      customerId: item.customerId,
      released: item.released.map((r) => ({ holder: holderRefOf(item.customerId, r.holder), entryId: r.entryId })),
      pending: item.pending.map((holder) => holderRefOf(item.customerId, holder)),
      unknown: item.unknown.map((holder) => holderRefOf(item.customerId, holder)),
    }),
  "A customer unlock released some holders but not all: repeat the same request to release the rest (holders already released are not released again)",
  {
    fields: {
      customerId: Schema.String,
      released: Schema.Array(Schema.Struct({ holder: HolderJson, entryId: Schema.String })),
      pending: Schema.Array(HolderJson),
      unknown: Schema.Array(HolderJson),
    },
    sample: { customerId: "", released: [], pending: [], unknown: [] },
  },
)

/** 500 INTERNAL_ERROR as a problem response. */
export const InternalErrorProblem = problem(
  InternalError,
  (detail) => new InternalError({ detail }),
  "An unexpected error; the body reveals nothing of it",
)
