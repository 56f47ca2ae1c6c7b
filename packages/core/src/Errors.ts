/**
 * The typed failures of creditlock: one `Schema.TaggedError` per cause, each with a stable HTTP
 * status, problem title and machine code. A rejected operation changes nothing.
 *
 * @module
 */
import { Schema } from "effect"

/** Fields every creditlock error carries: a human-readable explanation of this occurrence. */
const fields = { detail: Schema.String }

/** A holder named in an error (the same shape as `HolderRef`, which lives in Holder.ts). */
const HolderName = Schema.Struct({
  customerId: Schema.String,
  holderType: Schema.Literal("contracts", "customers"),
  holderId: Schema.String,
})

/** The request is malformed: wrong shape, bad id, unknown currency, zero delta, … (400). */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", fields) {
  get status(): 400 {
    return 400
  }
  get title(): string {
    return "Invalid request body"
  }
  get code(): string {
    return "INVALID_REQUEST"
  }
}

/** No credential, or one that is not known (401). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", fields) {
  get status(): 401 {
    return 401
  }
  get title(): string {
    return "Unauthorised"
  }
  get code(): string {
    return "UNAUTHORIZED"
  }
}

/** A valid credential that may not act on this customer (403). */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", fields) {
  get status(): 403 {
    return 403
  }
  get title(): string {
    return "Forbidden"
  }
  get code(): string {
    return "FORBIDDEN"
  }
}

/** The holder (or the customer, subscription, order or balance group looked up) does not exist (404). */
export class HolderNotFound extends Schema.TaggedError<HolderNotFound>()("HolderNotFound", fields) {
  get status(): 404 {
    return 404
  }
  get title(): string {
    return "Not Found"
  }
  get code(): string {
    return "HOLDER_NOT_FOUND"
  }
}

/**
 * The request conflicts with what is stored: an idempotency reference reused for a different
 * request, a holder re-opened with another balance group, or a lookup that matches more than one
 * customer (409).
 */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", fields) {
  get status(): 409 {
    return 409
  }
  get title(): string {
    return "Conflict"
  }
  get code(): string {
    return "IDEMPOTENCY_CONFLICT"
  }
}

/** The same credit (type + currency) appears twice in one modify request (422). */
export class DuplicateCreditType extends Schema.TaggedError<DuplicateCreditType>()("DuplicateCreditType", fields) {
  get status(): 422 {
    return 422
  }
  get title(): string {
    return "Unprocessable Content"
  }
  get code(): string {
    return "DUPLICATE_CREDIT_TYPE"
  }
}

/** A debit would leave the credit below 0 and no credit limit applies to the holder (422). */
export class InsufficientCredit extends Schema.TaggedError<InsufficientCredit>()("InsufficientCredit", fields) {
  get status(): 422 {
    return 422
  }
  get title(): string {
    return "Unprocessable Content"
  }
  get code(): string {
    return "INSUFFICIENT_CREDIT"
  }
}

/** A debit would leave the credit below the minimum allowed by the holder's credit limit (422). */
export class CreditLimitExceeded extends Schema.TaggedError<CreditLimitExceeded>()("CreditLimitExceeded", fields) {
  get status(): 422 {
    return 422
  }
  get title(): string {
    return "Unprocessable Content"
  }
  get code(): string {
    return "CREDIT_LIMIT_EXCEEDED"
  }
}

/** A credit-limit request names a resource that is not an ISO 4217 currency (422). */
export class UnsupportedResource extends Schema.TaggedError<UnsupportedResource>()("UnsupportedResource", fields) {
  get status(): 422 {
    return 422
  }
  get title(): string {
    return "Unprocessable Content"
  }
  get code(): string {
    return "UNSUPPORTED_RESOURCE"
  }
}

/** A resulting value (or a converted amount) would fall outside ±(2^53 − 1) (422). */
export class AmountOutOfRange extends Schema.TaggedError<AmountOutOfRange>()("AmountOutOfRange", fields) {
  get status(): 422 {
    return 422
  }
  get title(): string {
    return "Unprocessable Content"
  }
  get code(): string {
    return "AMOUNT_OUT_OF_RANGE"
  }
}

/** The holder has a live lock (held by anyone) until `expiresAt`; never says its key (423). */
export class CreditLocked extends Schema.TaggedError<CreditLocked>()("CreditLocked", {
  ...fields,
  expiresAt: Schema.optional(Schema.DateFromSelf),
}) {
  get status(): 423 {
    return 423
  }
  get title(): string {
    return "Locked"
  }
  get code(): string {
    return "CREDIT_LOCKED"
  }
}

/**
 * A modification was attempted without a live lock on the holder, and the key presented is not
 * that of the holder's last lock (never locked, released, or released by an administrator) (423).
 */
export class LockNotHeld extends Schema.TaggedError<LockNotHeld>()("LockNotHeld", fields) {
  get status(): 423 {
    return 423
  }
  get title(): string {
    return "Locked"
  }
  get code(): string {
    return "LOCK_NOT_HELD"
  }
}

/** The holder has a live lock until `expiresAt`, but the key presented is not its key (423). */
export class LockKeyMismatch extends Schema.TaggedError<LockKeyMismatch>()("LockKeyMismatch", {
  ...fields,
  expiresAt: Schema.optional(Schema.DateFromSelf),
}) {
  get status(): 423 {
    return 423
  }
  get title(): string {
    return "Locked"
  }
  get code(): string {
    return "LOCK_KEY_MISMATCH"
  }
}

/**
 * The key presented is that of the holder's last lock, which expired at `expiredAt` and has not
 * been replaced: the caller's lock ran out. Lock again (the credit may have been changed by no one,
 * but nothing done under the old key is accepted any more) (423).
 */
export class LockExpired extends Schema.TaggedError<LockExpired>()("LockExpired", {
  ...fields,
  expiredAt: Schema.DateFromSelf,
}) {
  get status(): 423 {
    return 423
  }
  get title(): string {
    return "Locked"
  }
  get code(): string {
    return "LOCK_EXPIRED"
  }
}

/** Too many requests for this credential; retry after `retryAfterSeconds` (429). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...fields,
  retryAfterSeconds: Schema.Number,
}) {
  get status(): 429 {
    return 429
  }
  get title(): string {
    return "Too Many Requests"
  }
  get code(): string {
    return "RATE_LIMITED"
  }
}

/**
 * The storage backend failed or could not be reached, or contention exhausted the engine's
 * bounded retries. Nothing was changed: the write was not applied, and retrying is safe (503).
 * (When a write may have been applied, the error is {@link OutcomeUnknown} instead.)
 */
export class StorageUnavailable extends Schema.TaggedError<StorageUnavailable>()("StorageUnavailable", {
  ...fields,
  cause: Schema.optional(Schema.Defect),
}) {
  get status(): 503 {
    return 503
  }
  get title(): string {
    return "Service Unavailable"
  }
  get code(): string {
    return "STORAGE_UNAVAILABLE"
  }
}

/**
 * A write was sent to the storage and no answer came back, and no proof that it landed (or that
 * it never will) could be read in time: it may have been applied or not (503). Retry with the same
 * `reference` (HTTP `Idempotency-Key`) — a retry returns the original result if it was applied —
 * or look for `entryId` in the holder's journal. For `lock`, a lock may now be held with a key
 * nobody has; it expires with its TTL (or an administrator's customer unlock releases it).
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  ...fields,
  /** The id of the journal entry the write would have appended, when it appends one. */
  entryId: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect),
}) {
  get status(): 503 {
    return 503
  }
  get title(): string {
    return "Service Unavailable"
  }
  get code(): string {
    return "OUTCOME_UNKNOWN"
  }
}

/**
 * `unlockCustomer` released some of the customer's holders but not all (503): `released` lists
 * those released (with their journal entries), `pending` those not released (the storage refused
 * or could not be reached: nothing was written), and `unknown` those whose release was sent but
 * not confirmed (it may have been applied). Repeating the same call releases the rest and settles
 * the unknown ones; holders already released are not released again.
 */
export class UnlockIncomplete extends Schema.TaggedError<UnlockIncomplete>()("UnlockIncomplete", {
  ...fields,
  customerId: Schema.String,
  released: Schema.Array(
    Schema.Struct({
      holder: HolderName,
      entryId: Schema.String,
    }),
  ),
  pending: Schema.Array(HolderName),
  unknown: Schema.Array(HolderName),
}) {
  get status(): 503 {
    return 503
  }
  get title(): string {
    return "Service Unavailable"
  }
  get code(): string {
    return "UNLOCK_INCOMPLETE"
  }
}

/** Every typed failure of creditlock, as a schema (for transport) … */
export const CreditEngineError = Schema.Union(
  InvalidRequest,
  Unauthorized,
  Forbidden,
  HolderNotFound,
  IdempotencyConflict,
  DuplicateCreditType,
  InsufficientCredit,
  CreditLimitExceeded,
  UnsupportedResource,
  AmountOutOfRange,
  CreditLocked,
  LockNotHeld,
  LockKeyMismatch,
  LockExpired,
  RateLimited,
  StorageUnavailable,
  OutcomeUnknown,
  UnlockIncomplete,
)

/** … and as a type. Each member has `status`, `title`, `code` and `detail`. */
export type CreditEngineError = typeof CreditEngineError.Type

/** The error tags, handy for `Effect.catchTags` and exhaustive switches. */
export type CreditEngineErrorTag = CreditEngineError["_tag"]
