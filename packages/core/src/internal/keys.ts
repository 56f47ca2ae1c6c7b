import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

/** A new lock key: 128 random bits, base64url (22 characters). */
export const generateLockKey = (): string => randomBytes(16).toString("base64url")

/** The SHA-256 of a lock key, base64url; the only form of a key that is ever stored. */
export const hashLockKey = (key: string): string => createHash("sha256").update(key, "utf8").digest("base64url")

/** Constant-time equality of two key hashes produced by {@link hashLockKey}. */
export const sameKeyHash = (a: string, b: string): boolean => {
  const x = Buffer.from(a, "base64url")
  const y = Buffer.from(b, "base64url")
  return x.length === y.length && timingSafeEqual(x, y)
}

/** SHA-256 of a string, base64url: request fingerprints for idempotency. */
export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("base64url")
