/**
 * Authentication and authorisation of the HTTP API.
 *
 * The API is given a list of {@link Credential}s, `{ token, username?, customers }` (the
 * `creditlock` server of @creditlock/server reads them from `CREDIT_CREDENTIALS`). A credential
 * without a username is presented as `Authorization: Bearer <token>`; one with a username as the
 * headers `api-key: <token>` and `api-username: <username>`. Tokens are held as `Redacted` values,
 * are compared as SHA-256 digests in constant time against every configured credential, and are
 * never logged or echoed.
 *
 * A request without a credential, or with one that matches none, is refused with 401. A known
 * credential acting on a customer outside its `customers` list is refused with 403. Each credential
 * has its own rate limit (a token bucket); beyond it requests are refused with 429 and `Retry-After`.
 *
 * The public documents (`/docs`, `/openapi.json`) need no credential but count against the same
 * limit ({@link Access}): a request presenting a known credential spends from that credential's
 * bucket, any other from the bucket of its remote address — an IPv6 address by its /64 network,
 * since one host commonly holds a whole /64. Behind a proxy every anonymous caller shares the
 * proxy's address; a web handler (Fetch API) sees no address, so its anonymous callers share one
 * bucket.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Forbidden, HolderRef, RateLimited, Unauthorized } from "@creditlock/core"
import { HttpApiMiddleware, HttpApiSecurity, HttpServerRequest, OpenApi } from "@effect/platform"
import { Clock, Context, Duration, Effect, Either, Exit, Layer, Option, Redacted, Schema } from "effect"
import { RateLimitedProblem, UnauthorizedProblem } from "./Problem.js"

/** One configured credential. */
export interface Credential {
  /** The secret, presented as a Bearer token or as `api-key`. */
  readonly token: Redacted.Redacted<string>
  /** When set, the credential is presented as `api-key` + `api-username`. */
  readonly username?: string | undefined
  /** The customers this credential may act on; `"*"` means all (an administrator). */
  readonly customers: ReadonlyArray<string>
}

/**
 * A credential as plain data, its token a string: what `CREDIT_CREDENTIALS` holds (as JSON) and
 * what `createCreditHandler` takes. {@link validateCredentials} checks a list of them.
 */
export interface PlainCredential {
  /** 1–1024 characters, no whitespace or control characters. */
  readonly token: string
  /** 1–256 characters, no whitespace or control characters; unique within the list. */
  readonly username?: string | undefined
  /** A non-empty list of customer ids, or `"*"` for every customer. */
  readonly customers: ReadonlyArray<string>
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const unsafeText = /[\s\u0000-\u001f\u007f]/
const isCustomerId = Schema.is(HolderRef.fields.customerId)

/**
 * Checks a list of {@link PlainCredential}s, the one rule set of every way credentials reach the
 * API: a non-empty array of `{ token, username?, customers }` objects, no unknown fields, tokens
 * and usernames of 1–1024 and 1–256 characters without whitespace or control characters, customer
 * lists non-empty and made of valid customer ids or `"*"`, no credential twice, no username twice
 * (a username names one credential in logs and for its rate limit). Tokens become `Redacted`.
 *
 * A refusal names the list (`name`, e.g. `"CREDIT_CREDENTIALS"`), the position and the field —
 * `credentials[1].token must be …` — and never repeats a token.
 */
export const validateCredentials = (
  input: unknown,
  name = "credentials",
): Either.Either<ReadonlyArray<Credential>, string> => {
  if (!Array.isArray(input) || input.length === 0) {
    return Either.left(`${name} must be a non-empty array of credentials { token, username?, customers }`)
  }
  const credentials: Array<Credential> = []
  for (const [i, entry] of input.entries()) {
    const at = `${name}[${i}]`
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      return Either.left(`${at} must be an object { token, username?, customers }`)
    }
    const unknownKeys = Object.keys(entry).filter((k) => k !== "token" && k !== "username" && k !== "customers")
    if (unknownKeys.length > 0) return Either.left(`${at} has unknown fields: ${unknownKeys.join(", ")}`)
    const { token, username, customers } = entry as Record<string, unknown>
    if (typeof token !== "string" || token.length < 1 || token.length > 1024 || unsafeText.test(token)) {
      return Either.left(`${at}.token must be a string of 1–1024 characters without whitespace or control characters`)
    }
    if (
      username !== undefined &&
      (typeof username !== "string" || username.length < 1 || username.length > 256 || unsafeText.test(username))
    ) {
      return Either.left(`${at}.username must be a string of 1–256 characters without whitespace or control characters`)
    }
    if (
      !Array.isArray(customers) ||
      customers.length === 0 ||
      !customers.every((c) => c === "*" || (typeof c === "string" && isCustomerId(c)))
    ) {
      return Either.left(`${at}.customers must be a non-empty array of customer ids or "*"`)
    }
    const duplicate = credentials.findIndex(
      (other) => other.username === username && Redacted.value(other.token) === token,
    )
    if (duplicate >= 0) return Either.left(`${at} repeats ${name}[${duplicate}]`)
    const sameName = username === undefined ? -1 : credentials.findIndex((other) => other.username === username)
    if (sameName >= 0) return Either.left(`${at}.username is already used by ${name}[${sameName}]`)
    credentials.push({
      token: Redacted.make(token),
      ...(username === undefined ? {} : { username }),
      customers: [...(customers as ReadonlyArray<string>)],
    })
  }
  return Either.right(credentials)
}

/** Who a request acts as: a configured credential, named for logs without revealing its token. */
export class Principal extends Context.Tag("@creditlock/http/Principal")<
  Principal,
  {
    /** `username`, or `credential #n` (1-based position in the configuration) for a Bearer credential. */
    readonly name: string
    /** True when the credential may act on every customer. */
    readonly admin: boolean
    /** Whether the credential may act on `customerId`. */
    readonly allows: (customerId: string) => boolean
  }
>() {}

/** Fails with Forbidden unless the request's credential may act on `customerId`. */
export const requireCustomer = (customerId: string): Effect.Effect<void, Forbidden, Principal> =>
  Effect.flatMap(Principal, (principal) =>
    principal.allows(customerId)
      ? Effect.void
      : Effect.fail(new Forbidden({ detail: "this credential may not act on this customer" })),
  )

/** Fails with Forbidden unless the request's credential may act on every customer. */
export const requireAdmin = (what: string): Effect.Effect<void, Forbidden, Principal> =>
  Effect.flatMap(Principal, (principal) =>
    principal.admin
      ? Effect.void
      : Effect.fail(new Forbidden({ detail: `${what} needs a credential for all customers ("*")` })),
  )

/** A rate limit: at most `limit` requests per `window`, per credential (a token bucket refilled evenly). */
export interface RateLimit {
  readonly limit: number
  readonly window: Duration.DurationInput
}

/** The default rate limit: 60,000 requests per minute per credential (1,000 a second). */
export const DEFAULT_RATE_LIMIT: RateLimit = { limit: 60_000, window: Duration.minutes(1) }

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

interface Entry {
  readonly name: string
  readonly tokenDigest: Buffer
  readonly usernameDigest: Buffer | null
  readonly admin: boolean
  readonly customers: ReadonlySet<string>
}

/**
 * Token buckets by name. With `maxBuckets`, the least recently used buckets beyond that many are
 * forgotten (a forgotten bucket starts full again): the names of anonymous callers are addresses,
 * which a caller chooses.
 */
const makeBuckets = (rateLimit: RateLimit, maxBuckets = Number.POSITIVE_INFINITY) => {
  const capacity = rateLimit.limit
  const windowMillis = Duration.toMillis(Duration.decode(rateLimit.window))
  const refillPerMilli = capacity / windowMillis
  const buckets = new Map<string, { tokens: number; at: number }>()
  const bounded = Number.isFinite(maxBuckets)
  const put = (name: string, bucket: { tokens: number; at: number }) => {
    // Re-inserted when bounded, so that the map's order is the order of last use.
    if (bounded) buckets.delete(name)
    buckets.set(name, bucket)
    if (bounded && buckets.size > maxBuckets) {
      const oldest = buckets.keys().next()
      if (oldest.done !== true) buckets.delete(oldest.value)
    }
  }
  /** Takes one token; returns 0 when granted, else the seconds until a token is available. */
  return (name: string, now: number): number => {
    const bucket = buckets.get(name) ?? { tokens: capacity, at: now }
    const tokens = Math.min(capacity, bucket.tokens + Math.max(0, now - bucket.at) * refillPerMilli)
    if (tokens >= 1) {
      put(name, { tokens: tokens - 1, at: now })
      return 0
    }
    put(name, { tokens, at: now })
    return Math.max(1, Math.ceil((1 - tokens) / refillPerMilli / 1000))
  }
}

/** How many anonymous callers' buckets are remembered at most. */
const MAX_ADDRESS_BUCKETS = 100_000

/**
 * The bucket name of a remote address: an IPv4 address as it is (also when IPv4-mapped), an IPv6
 * address by its /64 network.
 */
export const addressBucket = (address: string): string => {
  const plain = address.replace(/%.*$/, "").toLowerCase()
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(plain)
  if (mapped?.[1] !== undefined) return mapped[1]
  if (!plain.includes(":")) return plain
  const [head = "", tail = ""] = plain.split("::", 2)
  const groupsOf = (part: string) => part.split(":").filter((group) => group !== "")
  const before = groupsOf(head)
  const after = plain.includes("::") ? groupsOf(tail) : []
  const missing = Math.max(0, 8 - before.length - after.length)
  const groups = [...before, ...Array.from({ length: missing }, () => "0"), ...after]
  return `${groups
    .slice(0, 4)
    .map((group) => (/^[0-9a-f]{1,4}$/.test(group) ? Number.parseInt(group, 16).toString(16) : group))
    .join(":")}::/64`
}

const headerValue = (headers: Readonly<Record<string, string | undefined>>, name: string): string | undefined => {
  const value = headers[name]
  return value === undefined || value === "" ? undefined : value
}

/** What authenticating one request concluded. */
type Outcome = Exit.Exit<Principal["Type"], Unauthorized | RateLimited>

/** Authentication and rate limits of the API over one list of credentials, sharing their buckets. */
export interface Access {
  /**
   * Identifies the credential of a request (constant time over all credentials) and applies its
   * rate limit. Each request is authenticated once, however many security schemes consult it.
   */
  readonly authenticate: (
    request: HttpServerRequest.HttpServerRequest,
  ) => Effect.Effect<Principal["Type"], Unauthorized | RateLimited>
  /**
   * The rate limit of a public route: a request presenting a known credential spends from that
   * credential's bucket; any other (no credential, or one that matches none) from the bucket of
   * its remote address (see {@link addressBucket}), or of all requests without an address.
   */
  readonly limitPublic: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void, RateLimited>
}

/**
 * The authenticator over a list of credentials: identifies the credential of a request (constant
 * time over all credentials) and applies its rate limit. Each request is authenticated once, however
 * many security schemes consult it.
 */
export const makeAuthenticator = (
  credentials: ReadonlyArray<Credential>,
  rateLimit: RateLimit = DEFAULT_RATE_LIMIT,
): ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<Principal["Type"], Unauthorized | RateLimited>) =>
  makeAccess(credentials, rateLimit).authenticate

/** {@link Access} over a list of credentials and a rate limit. */
export const makeAccess = (
  credentials: ReadonlyArray<Credential>,
  rateLimit: RateLimit = DEFAULT_RATE_LIMIT,
): Access => {
  const entries: ReadonlyArray<Entry> = credentials.map((c, i) => ({
    name: c.username ?? `credential #${i + 1}`,
    tokenDigest: digest(Redacted.value(c.token)),
    usernameDigest: c.username === undefined ? null : digest(c.username),
    admin: c.customers.includes("*"),
    customers: new Set(c.customers),
  }))
  const takeToken = makeBuckets(rateLimit)
  const takeAddressToken = makeBuckets(rateLimit, MAX_ADDRESS_BUCKETS)
  const decided = new WeakMap<HttpServerRequest.HttpServerRequest, Outcome>()

  /** The credential matching a presented token (and username), comparing against every entry. */
  const match = (token: string, username: string | undefined): Entry | undefined => {
    const tokenDigest = digest(token)
    const usernameDigest = username === undefined ? null : digest(username)
    let found: Entry | undefined
    for (const entry of entries) {
      const tokenOk = timingSafeEqual(entry.tokenDigest, tokenDigest)
      const usernameOk =
        entry.usernameDigest === null || usernameDigest === null
          ? entry.usernameDigest === usernameDigest
          : timingSafeEqual(entry.usernameDigest, usernameDigest)
      if (tokenOk && usernameOk && found === undefined) found = entry
    }
    return found
  }

  const identify = (request: HttpServerRequest.HttpServerRequest): Either.Either<Entry, Unauthorized> => {
    const authorization = headerValue(request.headers, "authorization")
    const apiKey = headerValue(request.headers, "api-key")
    const apiUsername = headerValue(request.headers, "api-username")
    if (authorization !== undefined) {
      const bearer = /^Bearer +(\S+) *$/i.exec(authorization)
      if (bearer?.[1] === undefined) {
        return Either.left(new Unauthorized({ detail: "the Authorization header must be 'Bearer <token>'" }))
      }
      const entry = match(bearer[1], undefined)
      return entry === undefined
        ? Either.left(new Unauthorized({ detail: "the Bearer token is not a known credential" }))
        : Either.right(entry)
    }
    if (apiKey !== undefined) {
      if (apiUsername === undefined) {
        return Either.left(new Unauthorized({ detail: "the api-key header needs an api-username header" }))
      }
      const entry = match(apiKey, apiUsername)
      return entry === undefined
        ? Either.left(new Unauthorized({ detail: "the api-key and api-username are not a known credential" }))
        : Either.right(entry)
    }
    return Either.left(
      new Unauthorized({
        detail: "a credential is required: 'Authorization: Bearer <token>', or 'api-key' with 'api-username'",
      }),
    )
  }

  const limited = (whose: string, wait: number) =>
    new RateLimited({
      detail: `the rate limit of ${rateLimit.limit} requests per ${Duration.format(Duration.decode(rateLimit.window))} for ${whose} is exhausted`,
      retryAfterSeconds: wait,
    })

  const decide = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<Outcome> =>
    Effect.map(Clock.currentTimeMillis, (now): Outcome => {
      const identified = identify(request)
      if (Either.isLeft(identified)) return Exit.fail(identified.left)
      const entry = identified.right
      const wait = takeToken(entry.name, now)
      if (wait > 0) return Exit.fail(limited("this credential", wait))
      return Exit.succeed({
        name: entry.name,
        admin: entry.admin,
        allows: (customerId) => entry.admin || entry.customers.has(customerId),
      })
    })

  const authenticate = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.suspend(() => {
      const known = decided.get(request)
      if (known !== undefined) return known
      return Effect.flatMap(decide(request), (outcome) => {
        decided.set(request, outcome)
        return outcome
      })
    })

  const limitPublic = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<void, RateLimited> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const identified = identify(request)
      const wait = Either.isRight(identified)
        ? takeToken(identified.right.name, now)
        : takeAddressToken(
            Option.match(request.remoteAddress, { onNone: () => "(no address)", onSome: addressBucket }),
            now,
          )
      if (wait === 0) return Effect.void
      return Effect.fail(limited(Either.isRight(identified) ? "this credential" : "this address", wait))
    })

  return { authenticate, limitPublic }
}

/** The `api-key` security scheme (its companion header `api-username` is documented alongside). */
export const apiKeySecurity = HttpApiSecurity.apiKey({ key: "api-key", in: "header" }).pipe(
  HttpApiSecurity.annotate(
    OpenApi.Description,
    "The credential's token, with its username in the 'api-username' header (credentials that have a username).",
  ),
)

/** The Bearer security scheme. */
export const bearerSecurity = HttpApiSecurity.bearer.pipe(
  HttpApiSecurity.annotate(OpenApi.Description, "The credential's token (credentials without a username)."),
)

/**
 * The authentication middleware of every route but the public ones: provides the {@link Principal}
 * or fails with 401 Unauthorized or 429 RateLimited.
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("@creditlock/http/Authentication", {
  failure: Schema.Union(UnauthorizedProblem, RateLimitedProblem),
  provides: Principal,
  security: { bearer: bearerSecurity, apiKey: apiKeySecurity },
}) {
  /** The middleware over these credentials and rate limit. */
  static readonly layer = (
    credentials: ReadonlyArray<Credential>,
    rateLimit: RateLimit = DEFAULT_RATE_LIMIT,
  ): Layer.Layer<Authentication> => Authentication.layerAccess(makeAccess(credentials, rateLimit))

  /** The middleware of an {@link Access}, whose buckets the public routes share. */
  static readonly layerAccess = (access: Access): Layer.Layer<Authentication> => {
    // Both schemes consult the same per-request decision, whatever header carried the credential.
    const viaRequest = () => Effect.flatMap(HttpServerRequest.HttpServerRequest, access.authenticate)
    return Layer.succeed(Authentication, Authentication.of({ bearer: viaRequest, apiKey: viaRequest }))
  }
}
