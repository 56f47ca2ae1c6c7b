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
import { Auth } from "@creditlock/http"
import { Either, Redacted } from "effect"

/**
 * Reads the credentials configuration (the JSON text of `CREDIT_CREDENTIALS`) with the rules of
 * `Auth.validateCredentials`: tokens become `Redacted` values. Error messages name the offending
 * position and field (`CREDIT_CREDENTIALS[0].token …`), never a token's value.
 */
export const parseCredentials = (json: string): Either.Either<ReadonlyArray<Auth.Credential>, string> => {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return Either.left("CREDIT_CREDENTIALS is not valid JSON")
  }
  return Auth.validateCredentials(value, "CREDIT_CREDENTIALS")
}

/** A fresh administrator credential (`customers: ["*"]`) with a random 256-bit Bearer token. */
export const generateAdminCredential = (): Auth.Credential => ({
  token: Redacted.make(randomBytes(32).toString("base64url")),
  customers: ["*"],
})
