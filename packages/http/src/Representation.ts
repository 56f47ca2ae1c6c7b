/**
 * The JSON representations of the HTTP API: request bodies, path and query parameters, response
 * bodies, and the functions that turn engine results into them. Field rules come from
 * @creditlock/core's schemas (ids, currency codes, modifications, references, BRM's credit-limit
 * body); this module only fixes how they travel over HTTP.
 *
 * Request bodies reject unknown members (a misspelt field of a payment request is an error, not
 * something to ignore).
 *
 * @module
 */
import {
  Credit as CoreCredit,
  CreditLimitRequest,
  type CreditLimitsView,
  type CreditView,
  type CurrencyInfo,
  currencyByCode,
  HolderRef,
  HolderType,
  type JournalEntry,
  type LimitAmount,
  ModifyRequest,
  type ResourceLimits,
  type ResourceLimitsView,
  toMajorUnits,
} from "@creditlock/core"
import { Option, Schema } from "effect"

const strict = { parseOptions: { onExcessProperty: "error" } } as const

/** Core's rule for ids (customer, holder and balance-group ids alike), as `HolderRef` applies it. */
const Id = HolderRef.fields.holderId

/** Core's rule for idempotency references, as `ModifyRequest` applies it. */
const Reference = ModifyRequest.fields.reference.from

/** The singular holder type used in responses (`"contract"`, `"customer"`). */
const singularType = (type: HolderType): "contract" | "customer" => (type === "contracts" ? "contract" : "customer")

/**
 * An id in a URL path. Decoded, the id the router extracted (already percent-decoded) checked
 * against core's id rule; encoded (by the typed client), percent-encoded so that any valid id,
 * `?`, `#` and `%` included, survives as one path segment.
 */
export const PathId = Schema.transform(Schema.String, Id, {
  strict: true,
  decode: (segment) => segment,
  encode: (id) => encodeURIComponent(id),
}).annotations({ description: "1–128 characters; no '/', whitespace or control characters" })

/** The path of a holder: `/credit/v1/customers/{customerId}/{holderType}/{holderId}`. */
export const HolderPath = Schema.Struct({
  customerId: PathId,
  holderType: HolderType.annotations({ description: "contracts or customers" }),
  holderId: PathId,
})

/** The path of a balance group's credit limits: `…/creditlimit/{id}`. */
export const BalanceGroupPath = Schema.Struct({ id: PathId })

/** The holder as shown in responses: `{ type: "contract" | "customer", id }`. */
export const HolderJson = Schema.Struct({
  type: Schema.Literal("contract", "customer"),
  id: Schema.String,
}).annotations({ identifier: "Holder" })

/** One credit: `{ type: "monetary", amount: { currencyCode, value }, updatedAt }`, value in minor units. */
export const CreditJson = Schema.Struct({ ...CoreCredit.fields, updatedAt: Schema.Date }).annotations({
  identifier: "Credit",
})

/** A holder and its current credit: `{ holder, current: { credit: [...] } }`. */
export const CreditStateJson = Schema.Struct({
  holder: HolderJson,
  current: Schema.Struct({ credit: Schema.Array(CreditJson) }),
}).annotations({ identifier: "CreditState" })

/** An empty `meta` object. */
export const EmptyMeta = Schema.Struct({})

/** `GET` a holder → 200 `{ data: { holder, current }, meta: {} }`. */
export const CreditResponse = Schema.Struct({ data: CreditStateJson, meta: EmptyMeta }).annotations({
  identifier: "CreditResponse",
})

/** A lock key: what `_lock` returns, `X-Lock-Key` and `_unlock` carry. Kept `Redacted` in memory. */
export const LockKey = Schema.Redacted(
  // The messages never repeat what was sent: it may be someone's key.
  Schema.String.pipe(
    Schema.minLength(1, { message: () => "must not be empty" }),
    Schema.maxLength(256, { message: () => "must be at most 256 characters" }),
  ),
).annotations({ description: "The key returned by _lock" })

/** A lock's fencing token: per holder, strictly increasing with every grant. */
export const LockToken = Schema.Int.pipe(Schema.positive()).annotations({
  description:
    "The lock's fencing token: a per-holder integer that strictly increases with every grant (also across expiry, takeover and admin unlock). Record it with side effects made under the lock and refuse any carrying a lower token than one already seen.",
})

/** `_lock` → 201 `{ data: { credit: { holder, current }, lock: { key, expiry, token } }, meta: {} }`. */
export const LockResponse = Schema.Struct({
  data: Schema.Struct({
    credit: CreditStateJson,
    lock: Schema.Struct({ key: LockKey, expiry: Schema.Date, token: LockToken }),
  }),
  meta: EmptyMeta,
}).annotations({ identifier: "LockResponse" })

/** The body of `_modify`: `{ reason, modifications }` (the reference travels as `Idempotency-Key`). */
export const ModifyBody = Schema.Struct({
  reason: ModifyRequest.fields.reason,
  modifications: ModifyRequest.fields.modifications,
}).annotations({ identifier: "ModifyBody", ...strict })

/** The headers of `_modify`: `X-Lock-Key` (required) and `Idempotency-Key` (optional, recommended). */
export const ModifyHeaders = Schema.Struct({
  "x-lock-key": LockKey,
  "idempotency-key": Schema.optional(Reference).annotations({
    description:
      "Recommended. The modification's idempotency reference (1–128 characters), unique per holder: a retry of the same request with the same key returns the original result without applying it again, even after the lock is gone; the same key with a different request → 409. Retries after a 503 OUTCOME_UNKNOWN must reuse the same key: without one, a retry may apply the modification twice.",
  }),
})

/** The headers of `_lock`: an optional `Idempotency-Key`. */
export const LockHeaders = Schema.Struct({
  "idempotency-key": Schema.optional(Reference).annotations({
    description:
      "Recommended. The grant's reference (1–128 characters): while the lock it granted lives, a retry with the same key returns that same lock (same key, expiry and token) instead of 423, so a lost response does not lock the caller out. Use an unguessable value (a UUID): whoever repeats it for this holder while the lock lives receives its key.",
  }),
})

/** `_modify` → 200 `{ data: { holder, current }, meta: { entryId } }`. */
export const ModifyResponse = Schema.Struct({
  data: CreditStateJson,
  meta: Schema.Struct({ entryId: Schema.String }),
}).annotations({ identifier: "ModifyResponse" })

/** The body of `_unlock`: `{ key }`. */
export const UnlockBody = Schema.Struct({ key: LockKey }).annotations({ identifier: "UnlockBody", ...strict })

/** The body of `_extend`: `{ key }`, the key of the live lock to extend. */
export const ExtendBody = Schema.Struct({ key: LockKey }).annotations({ identifier: "ExtendBody", ...strict })

/** `_extend` → 200 `{ data: { lock: { expiry, token } }, meta: {} }`. */
export const ExtendResponse = Schema.Struct({
  data: Schema.Struct({ lock: Schema.Struct({ expiry: Schema.Date, token: LockToken }) }),
  meta: EmptyMeta,
}).annotations({ identifier: "ExtendResponse" })

/**
 * The body of opening a holder: `{ balanceGroupId? }` (an empty body is `{}`). A balance-group id
 * is a global name that one holder claims for good; only an administrator credential may send one.
 */
export const OpenHolderBody = Schema.Struct({
  balanceGroupId: Schema.optional(Id).annotations({
    description:
      "The balance-group alias to claim for the holder (Billing Care addresses the holder by it): unique among all holders, first claim wins; another holder's → 409. Administrator credentials only (403 otherwise). Without it the holder has no balance group; re-opening it with one attaches it.",
  }),
}).annotations({
  identifier: "OpenHolderBody",
  ...strict,
})

const OpenedBody = Schema.Struct({
  data: Schema.Struct({
    holder: HolderJson,
    balanceGroupId: Schema.NullOr(Schema.String).annotations({
      description: "The holder's balance-group alias; null when it has none (the Billing Care routes cannot reach it)",
    }),
  }),
  meta: EmptyMeta,
}).annotations({ identifier: "HolderOpenedBody" })

/**
 * Opening a holder that was not open → 201 `{ data: { holder, balanceGroupId }, meta: {} }`,
 * `balanceGroupId` being `null` when the holder has none. Decoded, it carries `created: true`
 * (not part of the body).
 */
export const HolderOpened = OpenedBody.pipe(Schema.attachPropertySignature("created", true))

/** Opening a holder that was open already → 200, the same body; decoded, `created: false`. */
export const HolderAlreadyOpen = OpenedBody.pipe(Schema.attachPropertySignature("created", false))

/** A whole number written in decimal digits only (no sign, exponent or fraction), from a query string. */
const DecimalInt = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d{1,16}$/, { message: () => "must be a whole number in decimal digits" })),
  Schema.NumberFromString,
)

/** Journal paging: `?after=<seq>&limit=<1..1000>`. */
export const JournalParams = Schema.Struct({
  after: Schema.optional(DecimalInt.pipe(Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER))).annotations({
    description: "Entries after this sequence number (default 0)",
  }),
  limit: Schema.optional(DecimalInt.pipe(Schema.between(1, 1000))).annotations({
    description: "Page size, 1–1000 (default 100)",
  }),
}).annotations(strict)

/** A limit in minor units, or `"unlimited"`. */
const LimitAmountJson = Schema.Union(Schema.Number, Schema.Literal("unlimited"))

/** A currency's limits as stored, in minor units (as the journal records them). */
export const StoredLimitsJson = Schema.Struct({
  resourceId: Schema.Number,
  currencyCode: Schema.String,
  limit: Schema.NullOr(LimitAmountJson),
  floor: Schema.Number,
  thresholds: Schema.Array(Schema.Number),
  fixedThresholds: Schema.Array(Schema.Number),
  overrideCreditLimit: Schema.Boolean,
  dynamicFloor: Schema.NullOr(Schema.Boolean),
  rollUp: Schema.NullOr(Schema.Boolean),
  extension: Schema.Unknown,
  temporary: Schema.Array(Schema.Struct({ limit: LimitAmountJson, validFrom: Schema.Date, validTo: Schema.Date })),
  updatedAt: Schema.Date,
}).annotations({ identifier: "StoredLimits" })

/** A threshold crossed upward, as journaled (amounts in minor units). */
export const ThresholdJson = Schema.Struct({
  currencyCode: Schema.String,
  kind: Schema.Literal("percentage", "fixed"),
  threshold: Schema.Number,
  consumption: Schema.Number,
  effectiveLimit: LimitAmountJson,
}).annotations({ identifier: "Threshold" })

/** One journal entry. Values are in minor units; `at` and other instants are ISO 8601. */
export const JournalEntryJson = Schema.Struct({
  id: Schema.String,
  seq: Schema.Number,
  at: Schema.Date,
  kind: Schema.Literal("opened", "balance-group", "modification", "limits", "admin-unlock"),
  reason: Schema.optional(Schema.String),
  reference: Schema.optional(Schema.String),
  lockToken: Schema.optional(Schema.Number).annotations({
    description: "For modifications: the fencing token of the lock they were made under",
  }),
  changes: Schema.Array(
    Schema.Struct({ currencyCode: Schema.String, delta: Schema.Number, before: Schema.Number, after: Schema.Number }),
  ),
  thresholds: Schema.optional(Schema.Array(ThresholdJson)),
  limits: Schema.optional(Schema.Struct({ before: Schema.NullOr(StoredLimitsJson), after: StoredLimitsJson })),
  balanceGroupId: Schema.optional(Schema.String).annotations({
    description: "For balance-group entries: the alias attached to the holder",
  }),
  releasedLockExpiresAt: Schema.optional(Schema.Date),
}).annotations({ identifier: "JournalEntry" })

/** `GET …/journal` → 200 `{ data: { holder, entries }, meta: { next } }`; `next` is the `after` of the next page. */
export const JournalResponse = Schema.Struct({
  data: Schema.Struct({ holder: HolderJson, entries: Schema.Array(JournalEntryJson) }),
  meta: Schema.Struct({ next: Schema.NullOr(Schema.Number) }),
}).annotations({ identifier: "JournalResponse" })

/**
 * The body of `PATCH /customer/unlock`, form-encoded or JSON: exactly one of `customer_id`,
 * `subscription_id` (a contract's id) or `orderid` (a journal entry id or an idempotency key).
 */
export const CustomerUnlockBody = Schema.Struct({
  customer_id: Schema.optional(Id),
  subscription_id: Schema.optional(Id),
  orderid: Schema.optional(Reference),
}).pipe(
  Schema.filter((body) => {
    const given = [body.customer_id, body.subscription_id, body.orderid].filter((v) => v !== undefined).length
    return given === 1 || "give exactly one of customer_id, subscription_id or orderid"
  }),
  Schema.annotations({ identifier: "CustomerUnlockBody", ...strict }),
)

/** BRM's credit-limit body, exactly as core's `CreditLimitRequest` defines it. */
export const CreditLimitBody = CreditLimitRequest.annotations({ identifier: "CreditLimitRequest", ...strict })

/** A major-unit amount as BRM writes it: a decimal string such as `"12.00"`; `"-1"` is unlimited. */
const MajorAmount = Schema.String.annotations({ description: 'Major units, e.g. "12.00"; "-1" is unlimited' })

/** One currency's limits in BRM's terms (major units), with what is in force now. */
export const LimitsJson = Schema.Struct({
  resourceId: Schema.Number,
  currencyCode: Schema.String,
  limit: Schema.NullOr(MajorAmount),
  floor: MajorAmount,
  thresholds: Schema.String,
  fixedThresholds: Schema.String,
  overrideCreditLimit: Schema.Literal(0, 1),
  dynamicFloor: Schema.NullOr(Schema.Boolean),
  rollUp: Schema.NullOr(Schema.Boolean),
  extension: Schema.Unknown,
  tempCreditLimit: Schema.Array(
    Schema.Struct({ limit: MajorAmount, resourceId: Schema.Number, validFrom: Schema.Date, validTo: Schema.Date }),
  ),
  effectiveLimit: MajorAmount,
  minimumCredit: Schema.NullOr(MajorAmount),
  updatedAt: Schema.Date,
}).annotations({ identifier: "CreditLimits" })

/** `GET …/creditlimit/{id}` → 200 `{ data: { balanceGroupId, holder, at, limits }, meta: {} }`. */
export const CreditLimitsResponse = Schema.Struct({
  data: Schema.Struct({
    balanceGroupId: Schema.String,
    holder: HolderJson,
    at: Schema.Date,
    limits: Schema.Array(LimitsJson),
  }),
  meta: EmptyMeta,
}).annotations({ identifier: "CreditLimitsResponse" })

/** `GET /healthz` → 200 `{ status: "ok" }`. */
export const HealthResponse = Schema.Struct({ status: Schema.Literal("ok") }).annotations({
  identifier: "HealthResponse",
})

// ---------------------------------------------------------------------------------------------
// Engine results → representations

/** The holder as responses show it. */
export const holderJson = (ref: HolderRef): typeof HolderJson.Type => ({
  type: singularType(ref.holderType),
  id: ref.holderId,
})

/** A holder's credit as responses show it. */
export const creditStateJson = (view: CreditView): typeof CreditStateJson.Type => ({
  holder: holderJson(view.holder),
  current: { credit: view.current.credit },
})

const storedLimitsJson = (l: ResourceLimits): typeof StoredLimitsJson.Type => ({
  resourceId: l.resourceId,
  currencyCode: l.currencyCode,
  limit: l.limit,
  floor: l.floor,
  thresholds: l.thresholds,
  fixedThresholds: l.fixedThresholds,
  overrideCreditLimit: l.overrideCreditLimit,
  dynamicFloor: l.dynamicFloor,
  rollUp: l.rollUp,
  extension: l.extension,
  temporary: l.temporary.map((t) => ({
    limit: t.limit,
    validFrom: new Date(t.validFrom),
    validTo: new Date(t.validTo),
  })),
  updatedAt: new Date(l.updatedAt),
})

/** A journal entry as responses show it (the request fingerprint stays internal). */
export const journalEntryJson = (e: JournalEntry): typeof JournalEntryJson.Type => ({
  id: e.id,
  seq: e.seq,
  at: new Date(e.at),
  kind: e.kind,
  ...(e.reason === undefined ? {} : { reason: e.reason }),
  ...(e.reference === undefined ? {} : { reference: e.reference }),
  ...(e.lockToken === undefined ? {} : { lockToken: e.lockToken }),
  changes: e.changes,
  ...(e.thresholds === undefined ? {} : { thresholds: e.thresholds }),
  ...(e.limits === undefined
    ? {}
    : {
        limits: {
          before: e.limits.before === null ? null : storedLimitsJson(e.limits.before),
          after: storedLimitsJson(e.limits.after),
        },
      }),
  ...(e.balanceGroupId === undefined ? {} : { balanceGroupId: e.balanceGroupId }),
  ...(e.releasedLockExpiresAt === undefined ? {} : { releasedLockExpiresAt: new Date(e.releasedLockExpiresAt) }),
})

const major = (minor: number, currency: CurrencyInfo | undefined): string =>
  currency === undefined ? String(minor) : toMajorUnits(minor, currency)

const majorLimit = (amount: LimitAmount, currency: CurrencyInfo | undefined): string =>
  amount === "unlimited" ? "-1" : major(amount, currency)

const limitsJson = (l: ResourceLimitsView): typeof LimitsJson.Type => {
  const currency = Option.getOrUndefined(currencyByCode(l.currencyCode))
  return {
    resourceId: l.resourceId,
    currencyCode: l.currencyCode,
    limit: l.limit === null ? null : majorLimit(l.limit, currency),
    floor: major(l.floor, currency),
    thresholds: l.thresholds.join("|"),
    fixedThresholds: l.fixedThresholds.map((f) => major(f, currency)).join("|"),
    overrideCreditLimit: l.overrideCreditLimit ? 1 : 0,
    dynamicFloor: l.dynamicFloor,
    rollUp: l.rollUp,
    extension: l.extension,
    tempCreditLimit: l.temporary.map((t) => ({
      limit: majorLimit(t.limit, currency),
      resourceId: l.resourceId,
      validFrom: new Date(t.validFrom),
      validTo: new Date(t.validTo),
    })),
    effectiveLimit: majorLimit(l.effectiveLimit, currency),
    minimumCredit: l.minimumCredit === null ? null : major(l.minimumCredit, currency),
    updatedAt: new Date(l.updatedAt),
  }
}

/**
 * A holder's credit limits as `GET …/creditlimit/{id}` shows them; `balanceGroupId` is the alias
 * the holder was found by.
 */
export const creditLimitsJson = (
  view: Omit<CreditLimitsView, "balanceGroupId"> & { readonly balanceGroupId: string },
): typeof CreditLimitsResponse.Type => ({
  data: {
    balanceGroupId: view.balanceGroupId,
    holder: holderJson(view.holder),
    at: view.at,
    limits: view.limits.map(limitsJson),
  },
  meta: {},
})
