import { createHash, createHmac, randomFillSync, timingSafeEqual } from "node:crypto"

// Random bytes are drawn from the CSPRNG 4 KiB at a time (as `crypto.randomUUID` does): one
// system call per 256 keys instead of one per key. Each key's bytes are used once.
const pool = Buffer.alloc(16 * 256)
let offset = pool.length

/** A new lock key: 128 random bits from node:crypto's CSPRNG, base64url (22 characters). */
export const generateLockKey = (): string => {
  if (offset === pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const key = pool.toString("base64url", offset, offset + 16)
  offset += 16
  return key
}

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

/**
 * The key of a lock granted under a caller's reference: the first 128 bits of
 * HMAC-SHA256(secret, holder ‖ reference ‖ nonce), base64url (22 characters, like a random key).
 * The nonce is minted per grant and stored with the lock; the secret never is. So the engine can
 * hand a retry with the same reference the same key, while the store holds only the key's
 * SHA-256, the nonce and the reference's SHA-256 — none of which yields the key without the secret.
 */
export const deriveLockKey = (secret: Uint8Array, holder: string, reference: string, nonce: string): string =>
  createHmac("sha256", secret).update(`${holder}\n${reference}\n${nonce}`, "utf8").digest().toString("base64url", 0, 16)
