/**
 * `CREDIT_CREDENTIALS`: who may call the server's API, as a JSON array
 * `[{ "token": "…", "username"?: "…", "customers": ["*" | customerId, …] }]`. A credential without
 * a username is presented as `Authorization: Bearer <token>`; one with a username as the headers
 * `api-key: <token>` and `api-username: <username>` (see `Auth` of @creditlock/http). Without the
 * variable the server generates one administrator credential and prints its token once.
 *
 * @module
 */
import { randomBytes } from "node:crypto"
import { HolderRef } from "@creditlock/core"
import type { Auth } from "@creditlock/http"
import { Either, Redacted, Schema } from "effect"

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const unsafeText = /[\s\u0000-\u001f\u007f]/
const isId = Schema.is(HolderRef.fields.customerId)

/**
 * Reads the credentials configuration (the JSON text of `CREDIT_CREDENTIALS`): tokens become
 * `Redacted` values. Error messages name the offending position and field, never a token's value.
 */
export const parseCredentials = (json: string): Either.Either<ReadonlyArray<Auth.Credential>, string> => {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return Either.left("CREDIT_CREDENTIALS is not valid JSON")
  }
  if (!Array.isArray(value) || value.length === 0) {
    return Either.left("CREDIT_CREDENTIALS must be a non-empty JSON array of credentials")
  }
  const credentials: Array<Auth.Credential> = []
  for (const [i, entry] of value.entries()) {
    const at = `CREDIT_CREDENTIALS[${i}]`
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
      !customers.every((c) => c === "*" || (typeof c === "string" && isId(c)))
    ) {
      return Either.left(`${at}.customers must be a non-empty array of customer ids or "*"`)
    }
    const duplicate = credentials.findIndex(
      (other) => other.username === username && Redacted.value(other.token) === token,
    )
    if (duplicate >= 0) return Either.left(`${at} repeats CREDIT_CREDENTIALS[${duplicate}]`)
    // A username names one credential (in logs, and for its rate limit).
    const sameName = username === undefined ? -1 : credentials.findIndex((other) => other.username === username)
    if (sameName >= 0) return Either.left(`${at}.username is already used by CREDIT_CREDENTIALS[${sameName}]`)
    credentials.push({
      token: Redacted.make(token),
      ...(username === undefined ? {} : { username }),
      customers: customers as ReadonlyArray<string>,
    })
  }
  return Either.right(credentials)
}

/** A fresh administrator credential (`customers: ["*"]`) with a random 256-bit Bearer token. */
export const generateAdminCredential = (): Auth.Credential => ({
  token: Redacted.make(randomBytes(32).toString("base64url")),
  customers: ["*"],
})
