/**
 * Lock answers over HTTP: the fencing token of each grant, `Retry-After` and the expiry on every
 * 423, and LOCK_EXPIRED for a caller whose own lock ran out. Locks here live 1.5 s, so expiry
 * is real time.
 */
import type { HolderRef } from "@creditlock/core"
import { describe, expect, it } from "vitest"
import { ADMIN, adminJson, bearer, holderPath, request, serverPerFile } from "./harness.js"

const TTL_MILLIS = 1_500
const h = serverPerFile({ engine: { lockTtl: `${TTL_MILLIS} millis` } })

let counter = 0
const fresh = (): HolderRef => ({ customerId: "cus_locks", holderType: "contracts", holderId: `sub_${++counter}` })

const open = async (ref: HolderRef) => {
  const r = await request(h.base, "PUT", holderPath(ref), { headers: adminJson })
  expect(r.status).toBe(201)
}

interface Granted {
  readonly key: string
  readonly expiry: string
  readonly token: number
}

const lock = async (ref: HolderRef): Promise<Granted> => {
  const r = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
  expect(r.status, r.text).toBe(201)
  return (r.json as { data: { lock: Granted } }).data.lock
}

const modify = (ref: HolderRef, key: string, value: number) =>
  request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
    headers: { ...adminJson, "x-lock-key": key },
    body: JSON.stringify({
      reason: "r",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value } }],
    }),
  })

/** The problem item of an error response, with every member (not only the four every problem has). */
const problemOf = (json: unknown): Record<string, unknown> | undefined =>
  (json as { error?: ReadonlyArray<Record<string, unknown>> }).error?.[0]

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("locks over HTTP", () => {
  it("each grant carries the next fencing token, and journal entries record it", async () => {
    const ref = fresh()
    await open(ref)
    const first = await lock(ref)
    expect((await modify(ref, first.key, 10)).status).toBe(200)
    const unlocked = await request(h.base, "PUT", `${holderPath(ref)}/_unlock`, {
      headers: adminJson,
      body: JSON.stringify({ key: first.key }),
    })
    expect(unlocked.status).toBe(204)
    const second = await lock(ref)
    expect([first.token, second.token]).toEqual([1, 2])
    const journal = await request(h.base, "GET", `${holderPath(ref)}/journal`, { headers: bearer(ADMIN) })
    const entries = (journal.json as { data: { entries: Array<{ kind: string; lockToken?: number }> } }).data.entries
    expect(entries.filter((e) => e.kind === "modification").map((e) => e.lockToken)).toEqual([1])
  })

  it("every 423 carries Retry-After and the expiry; a lock that ran out is LOCK_EXPIRED", async () => {
    const ref = fresh()
    await open(ref)
    const granted = await lock(ref)
    const expiresAt = Date.parse(granted.expiry)

    const locked = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
    expect(locked.status).toBe(423)
    expect(problemOf(locked.json)).toMatchObject({ code: "CREDIT_LOCKED", expiresAt: granted.expiry })
    const lockedWait = Number(locked.headers.get("retry-after"))
    expect(lockedWait).toBeGreaterThanOrEqual(1)
    expect(lockedWait).toBeLessThanOrEqual(Math.ceil(TTL_MILLIS / 1000))
    expect(problemOf(locked.json)).toMatchObject({ retryAfter: lockedWait })

    const mismatch = await modify(ref, "not-the-key", 1)
    expect(mismatch.status).toBe(423)
    expect(problemOf(mismatch.json)).toMatchObject({ code: "LOCK_KEY_MISMATCH", expiresAt: granted.expiry })
    expect(Number(mismatch.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)

    const never = await modify(ref, "never-granted", 1)
    expect(problemOf(never.json)).toMatchObject({ code: "LOCK_KEY_MISMATCH" })

    await sleep(Math.max(0, expiresAt - Date.now()) + 50)
    const expired = await modify(ref, granted.key, 1)
    expect(expired.status).toBe(423)
    expect(problemOf(expired.json)).toMatchObject({ code: "LOCK_EXPIRED", title: "Locked", expiredAt: granted.expiry })
    expect(expired.headers.get("retry-after")).toBe("0")
    const notHeld = await modify(ref, "never-granted", 1)
    expect(problemOf(notHeld.json)).toMatchObject({ code: "LOCK_NOT_HELD" })
    expect(notHeld.headers.get("retry-after")).toBe("0")

    const next = await lock(ref)
    expect(next.token).toBe(granted.token + 1)
  })

  it("PUT _extend moves the live lock's expiry, keeps its token, and never revives an expired lock", async () => {
    const ref = fresh()
    await open(ref)
    const granted = await lock(ref)
    await sleep(300)
    const extend = (key: string) =>
      request(h.base, "PUT", `${holderPath(ref)}/_extend`, { headers: adminJson, body: JSON.stringify({ key }) })
    const extended = await extend(granted.key)
    expect(extended.status, extended.text).toBe(200)
    const body = extended.json as { data: { lock: { expiry: string; token: number } }; meta: unknown }
    expect(body.data.lock.token).toBe(granted.token)
    expect(Date.parse(body.data.lock.expiry)).toBeGreaterThan(Date.parse(granted.expiry))
    expect(body.meta).toEqual({})
    expect(problemOf((await extend("not-the-key")).json)).toMatchObject({ code: "LOCK_KEY_MISMATCH" })
    const strict = await request(h.base, "PUT", `${holderPath(ref)}/_extend`, {
      headers: adminJson,
      body: JSON.stringify({ key: granted.key, ttl: 5 }),
    })
    expect(strict.status).toBe(400)
    await sleep(Math.max(0, Date.parse(body.data.lock.expiry) - Date.now()) + 50)
    const expired = await extend(granted.key)
    expect(expired.status).toBe(423)
    expect(problemOf(expired.json)).toMatchObject({ code: "LOCK_EXPIRED", expiredAt: body.data.lock.expiry })
  })

  it("PUT _lock with an Idempotency-Key: a retry while the lock lives gets the same lock, another key 423", async () => {
    const ref = fresh()
    await open(ref)
    const withKey = (key: string) =>
      request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: { ...bearer(ADMIN), "idempotency-key": key } })
    const first = await withKey("grant-7f3c")
    expect(first.status).toBe(201)
    const retry = await withKey("grant-7f3c")
    expect(retry.status).toBe(201)
    expect(retry.json).toEqual(first.json)
    const other = await withKey("grant-other")
    expect(other.status).toBe(423)
    expect(problemOf(other.json)).toMatchObject({ code: "CREDIT_LOCKED" })
    expect(other.text).not.toContain((first.json as { data: { lock: Granted } }).data.lock.key)
    const bad = await withKey("x".repeat(129))
    expect(bad.status).toBe(400)
  })
})
