import { CreditEngine, type HolderRef } from "@creditlock/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { ADMIN, adminJson, bearer, holderPath, LIMITED, problemOf, request, serverPerFile, TRACK } from "./harness.js"

const h = serverPerFile()

let counter = 0
/** A fresh holder id for each test, so tests do not depend on each other. */
const fresh = (customerId = "cus_routes"): HolderRef => ({
  customerId,
  holderType: "contracts",
  holderId: `sub_${++counter}`,
})

const open = async (ref: HolderRef, body?: unknown) => {
  const r = await request(h.base, "PUT", holderPath(ref), {
    headers: adminJson,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return r
}

const lock = async (ref: HolderRef): Promise<string> => {
  const r = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
  expect(r.status).toBe(201)
  return (r.json as { data: { lock: { key: string } } }).data.lock.key
}

const gbp = (value: number) => ({ type: "monetary", changeAmount: { currencyCode: "GBP", value } })

const modify = (ref: HolderRef, key: string, body: unknown, extra: Record<string, string> = {}) =>
  request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
    headers: { ...adminJson, "x-lock-key": key, ...extra },
    body: JSON.stringify(body),
  })

const expectProblem = (r: { status: number; json: unknown; headers: Headers }, status: number, code: string) => {
  expect(r.status, JSON.stringify(r.json)).toBe(status)
  expect(r.headers.get("content-type")).toContain("application/json")
  const problem = problemOf(r.json)
  expect(problem).toBeDefined()
  expect(problem?.status).toBe(String(status))
  expect(problem?.code).toBe(code)
  expect(problem?.detail.length).toBeGreaterThan(0)
  return problem
}

describe("PUT holder (open)", () => {
  it("creates with 201, answers 200 when open already, 409 with another balance group", async () => {
    const ref = fresh()
    const created = await open(ref, { balanceGroupId: "0.0.0.1+-balance_group+82896" })
    expect(created.status).toBe(201)
    expect(created.json).toEqual({
      data: { holder: { type: "contract", id: ref.holderId }, balanceGroupId: "0.0.0.1+-balance_group+82896" },
      meta: {},
    })
    const again = await open(ref)
    expect(again.status).toBe(200)
    expect(again.json).toEqual(created.json)
    expectProblem(await open(ref, { balanceGroupId: "other" }), 409, "IDEMPOTENCY_CONFLICT")
  })

  it("routes ids of the full 128 characters, multi-byte ones included", async () => {
    const ref: HolderRef = { customerId: "c".repeat(128), holderType: "customers", holderId: "€".repeat(128) }
    expect((await open(ref)).status).toBe(201)
    const r = await request(h.base, "GET", holderPath(ref), { headers: bearer(ADMIN) })
    expect(r.status).toBe(200)
    expect((r.json as { data: { holder: { id: string } } }).data.holder.id).toBe("€".repeat(128))
  })

  it("accepts an empty body: the holder has no balance group (null), so Billing Care cannot reach it", async () => {
    const ref = fresh()
    const r = await open(ref)
    expect(r.status).toBe(201)
    expect(r.json).toEqual({ data: { holder: { type: "contract", id: ref.holderId }, balanceGroupId: null }, meta: {} })
    const limits = `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/${ref.holderId}`
    expectProblem(await request(h.base, "GET", limits, { headers: bearer(ADMIN) }), 404, "HOLDER_NOT_FOUND")
  })

  it("attaches a balance group when re-opening a holder that has none, then keeps it", async () => {
    const ref = fresh()
    await open(ref)
    const attached = await open(ref, { balanceGroupId: `bg-attach-${ref.holderId}` })
    expect(attached.status).toBe(200)
    expect((attached.json as { data: { balanceGroupId: string } }).data.balanceGroupId).toBe(
      `bg-attach-${ref.holderId}`,
    )
    expect((await open(ref)).json).toEqual(attached.json)
    expectProblem(await open(ref, { balanceGroupId: `bg-other-${ref.holderId}` }), 409, "IDEMPOTENCY_CONFLICT")
    const limits = `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/bg-attach-${ref.holderId}`
    const read = await request(h.base, "GET", limits, { headers: bearer(ADMIN) })
    expect(read.status).toBe(200)
    expect((read.json as { data: { balanceGroupId: string } }).data.balanceGroupId).toBe(`bg-attach-${ref.holderId}`)
  })

  it("rejects unknown members, bad ids and bad holder types with 400", async () => {
    expectProblem(await open(fresh(), { balanceGroupId: "x", colour: "red" }), 400, "INVALID_REQUEST")
    expectProblem(await open(fresh(), { balanceGroupId: "has space" }), 400, "INVALID_REQUEST")
    expectProblem(await open({ ...fresh(), holderId: "x".repeat(129) }), 400, "INVALID_REQUEST")
    const r = await request(h.base, "PUT", "/credit/v1/customers/c1/wallets/w1", { headers: adminJson })
    expectProblem(r, 400, "INVALID_REQUEST")
  })
})

describe("GET holder", () => {
  it("answers the credit as { data: { holder, current: { credit } }, meta: {} }", async () => {
    const ref = fresh()
    await open(ref)
    const empty = await request(h.base, "GET", holderPath(ref), { headers: bearer(ADMIN) })
    expect(empty.status).toBe(200)
    expect(empty.json).toEqual({
      data: { holder: { type: "contract", id: ref.holderId }, current: { credit: [] } },
      meta: {},
    })
    const key = await lock(ref)
    expect((await modify(ref, key, { reason: "top-up", modifications: [gbp(1250)] })).status).toBe(200)
    const r = await request(h.base, "GET", holderPath(ref), { headers: bearer(ADMIN) })
    const credit = (r.json as { data: { current: { credit: Array<Record<string, unknown>> } } }).data.current.credit
    expect(credit).toHaveLength(1)
    expect(credit[0]).toMatchObject({ type: "monetary", amount: { currencyCode: "GBP", value: 1250 } })
    expect(new Date(String(credit[0]?.updatedAt)).toISOString()).toBe(credit[0]?.updatedAt)
  })

  it("shows customer holders with type customer", async () => {
    const ref: HolderRef = { customerId: "cus_routes", holderType: "customers", holderId: "cus_routes" }
    await open(ref)
    const r = await request(h.base, "GET", holderPath(ref), { headers: bearer(ADMIN) })
    expect((r.json as { data: { holder: unknown } }).data.holder).toEqual({ type: "customer", id: "cus_routes" })
  })

  it("answers 404 for a holder never opened", async () => {
    expectProblem(
      await request(h.base, "GET", holderPath(fresh()), { headers: bearer(ADMIN) }),
      404,
      "HOLDER_NOT_FOUND",
    )
  })
})

describe("PUT _lock", () => {
  it("grants a lock with 201 { data: { credit, lock: { key, expiry } } }, then 423 while it lives", async () => {
    const ref = fresh()
    await open(ref)
    const r = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
    expect(r.status).toBe(201)
    const body = r.json as {
      data: { credit: unknown; lock: { key: string; expiry: string } }
      meta: unknown
    }
    expect(body.data.credit).toEqual({ holder: { type: "contract", id: ref.holderId }, current: { credit: [] } })
    expect(body.data.lock.key).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(Date.parse(body.data.lock.expiry)).toBeGreaterThan(Date.now())
    expect(body.meta).toEqual({})
    const again = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
    const problem = expectProblem(again, 423, "CREDIT_LOCKED")
    expect(problem?.title).toBe("Locked")
    expect(again.text).not.toContain(body.data.lock.key)
  })

  it("answers 404 for a holder never opened", async () => {
    expectProblem(
      await request(h.base, "PUT", `${holderPath(fresh())}/_lock`, { headers: bearer(ADMIN) }),
      404,
      "HOLDER_NOT_FOUND",
    )
  })
})

describe("PUT _modify", () => {
  it("applies modifications: 200 { data: { holder, current }, meta: { entryId } }", async () => {
    const ref = fresh()
    await open(ref)
    const key = await lock(ref)
    const r = await modify(ref, key, {
      reason: "top-up",
      modifications: [gbp(500), { type: "monetary", changeAmount: { currencyCode: "EUR", value: 300 } }],
    })
    expect(r.status).toBe(200)
    const body = r.json as {
      data: { holder: unknown; current: { credit: Array<{ amount: unknown }> } }
      meta: { entryId: string }
    }
    expect(body.data.holder).toEqual({ type: "contract", id: ref.holderId })
    expect(body.data.current.credit.map((c) => c.amount)).toEqual([
      { currencyCode: "GBP", value: 500 },
      { currencyCode: "EUR", value: 300 },
    ])
    expect(body.meta.entryId).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("replays a retry with the same Idempotency-Key, and refuses another request under it with 409", async () => {
    const ref = fresh()
    await open(ref)
    const key = await lock(ref)
    const body = { reason: "invoice 7", modifications: [gbp(900)] }
    const first = await modify(ref, key, body, { "idempotency-key": "inv-7" })
    const retry = await modify(ref, key, body, { "idempotency-key": "inv-7" })
    expect(first.status).toBe(200)
    expect(retry.status).toBe(200)
    expect(retry.json).toEqual(first.json)
    expectProblem(
      await modify(ref, key, { reason: "invoice 7", modifications: [gbp(901)] }, { "idempotency-key": "inv-7" }),
      409,
      "IDEMPOTENCY_CONFLICT",
    )
    const credit = await h.run(Effect.flatMap(CreditEngine, (e) => e.getCredit(ref)))
    expect(credit.current.credit[0]?.amount.value).toBe(900)
  })

  it("refuses without a lock (423 LOCK_NOT_HELD) and with another key (423 LOCK_KEY_MISMATCH)", async () => {
    const ref = fresh()
    await open(ref)
    expectProblem(await modify(ref, "not-a-key", { reason: "r", modifications: [gbp(1)] }), 423, "LOCK_NOT_HELD")
    await lock(ref)
    const r = await modify(ref, "not-the-key", { reason: "r", modifications: [gbp(1)] })
    expect(problemOf(r.json)?.title).toBe("Locked")
    expectProblem(r, 423, "LOCK_KEY_MISMATCH")
  })

  it("refuses what the engine refuses: 422 INSUFFICIENT_CREDIT, DUPLICATE_CREDIT_TYPE, AMOUNT_OUT_OF_RANGE", async () => {
    const ref = fresh()
    await open(ref)
    const key = await lock(ref)
    expectProblem(await modify(ref, key, { reason: "r", modifications: [gbp(-1)] }), 422, "INSUFFICIENT_CREDIT")
    expectProblem(
      await modify(ref, key, { reason: "r", modifications: [gbp(1), gbp(2)] }),
      422,
      "DUPLICATE_CREDIT_TYPE",
    )
    expect((await modify(ref, key, { reason: "r", modifications: [gbp(Number.MAX_SAFE_INTEGER)] })).status).toBe(200)
    expectProblem(await modify(ref, key, { reason: "r", modifications: [gbp(1)] }), 422, "AMOUNT_OUT_OF_RANGE")
  })

  it("rejects malformed requests with 400 and changes nothing", async () => {
    const ref = fresh()
    await open(ref)
    const key = await lock(ref)
    const before = h.control.commits
    const bad = [
      { reason: "r", modifications: [] },
      { reason: "", modifications: [gbp(1)] },
      { reason: "r", modifications: [gbp(0)] },
      { reason: "r", modifications: [gbp(1.5)] },
      { reason: "r", modifications: [{ type: "monetary", changeAmount: { currencyCode: "gbp", value: 1 } }] },
      { reason: "r", modifications: [gbp(1)], reference: "inline references are not accepted" },
      { modifications: [gbp(1)] },
    ]
    for (const body of bad) expectProblem(await modify(ref, key, body), 400, "INVALID_REQUEST")
    const missingKey = await request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
      headers: adminJson,
      body: JSON.stringify({ reason: "r", modifications: [gbp(1)] }),
    })
    expect(expectProblem(missingKey, 400, "INVALID_REQUEST")?.detail).toContain("x-lock-key")
    expectProblem(
      await modify(ref, key, { reason: "r", modifications: [gbp(1)] }, { "idempotency-key": "x".repeat(129) }),
      400,
      "INVALID_REQUEST",
    )
    expect(h.control.commits).toBe(before)
  })
})

describe("PUT _unlock", () => {
  it("releases with 204, then answers 204 again when no lock lives", async () => {
    const ref = fresh()
    await open(ref)
    const key = await lock(ref)
    const r = await request(h.base, "PUT", `${holderPath(ref)}/_unlock`, {
      headers: adminJson,
      body: JSON.stringify({ key }),
    })
    expect(r.status).toBe(204)
    expect(r.text).toBe("")
    const again = await request(h.base, "PUT", `${holderPath(ref)}/_unlock`, {
      headers: adminJson,
      body: JSON.stringify({ key }),
    })
    expect(again.status).toBe(204)
    expect((await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })).status).toBe(201)
  })

  it("refuses another key with 423, a missing key with 400, an unknown holder with 404", async () => {
    const ref = fresh()
    await open(ref)
    await lock(ref)
    const unlock = (body: unknown, target = ref) =>
      request(h.base, "PUT", `${holderPath(target)}/_unlock`, { headers: adminJson, body: JSON.stringify(body) })
    expectProblem(await unlock({ key: "wrong" }), 423, "LOCK_KEY_MISMATCH")
    expectProblem(await unlock({}), 400, "INVALID_REQUEST")
    expectProblem(await unlock({ key: 42 }), 400, "INVALID_REQUEST")
    expectProblem(await unlock({ key: "k" }, fresh()), 404, "HOLDER_NOT_FOUND")
  })
})

describe("GET journal", () => {
  it("pages through entries oldest first with meta.next", async () => {
    const ref = fresh()
    await open(ref)
    const key = await lock(ref)
    await modify(ref, key, { reason: "one", modifications: [gbp(100)] }, { "idempotency-key": "j-1" })
    await modify(ref, key, { reason: "two", modifications: [gbp(-40)] })
    const page1 = await request(h.base, "GET", `${holderPath(ref)}/journal?limit=2`, { headers: bearer(ADMIN) })
    expect(page1.status).toBe(200)
    const b1 = page1.json as {
      data: { holder: unknown; entries: Array<Record<string, unknown>> }
      meta: { next: number | null }
    }
    expect(b1.data.holder).toEqual({ type: "contract", id: ref.holderId })
    expect(b1.data.entries.map((e) => e.kind)).toEqual(["opened", "modification"])
    expect(b1.data.entries[1]).toMatchObject({
      seq: 2,
      reason: "one",
      reference: "j-1",
      changes: [{ currencyCode: "GBP", delta: 100, before: 0, after: 100 }],
    })
    expect(b1.data.entries[1]).not.toHaveProperty("fingerprint")
    expect(b1.meta.next).toBe(2)
    const page2 = await request(h.base, "GET", `${holderPath(ref)}/journal?after=2&limit=2`, { headers: bearer(ADMIN) })
    const b2 = page2.json as { data: { entries: Array<Record<string, unknown>> }; meta: { next: number | null } }
    expect(b2.data.entries.map((e) => e.seq)).toEqual([3])
    expect(b2.meta.next).toBeNull()
  })

  it("rejects bad paging with 400 and unknown holders with 404", async () => {
    const ref = fresh()
    await open(ref)
    for (const query of [
      "limit=0",
      "limit=1001",
      "limit=abc",
      "limit=1e2",
      "limit=+5",
      "after=-1",
      "after=1.5",
      "page=2",
      "limit=1&limit=2",
    ]) {
      expectProblem(
        await request(h.base, "GET", `${holderPath(ref)}/journal?${query}`, { headers: bearer(ADMIN) }),
        400,
        "INVALID_REQUEST",
      )
    }
    expectProblem(
      await request(h.base, "GET", `${holderPath(fresh())}/journal`, { headers: bearer(ADMIN) }),
      404,
      "HOLDER_NOT_FOUND",
    )
  })
})

describe("PATCH /customer/unlock", () => {
  const patch = (body: string, headers: Record<string, string>) =>
    request(h.base, "PATCH", "/customer/unlock", { headers, body })
  const track = { "api-key": TRACK.token, "api-username": TRACK.username }
  const form = { ...track, "content-type": "application/x-www-form-urlencoded" }

  it("releases every live lock of a customer found by customer_id, subscription_id or orderid", async () => {
    const a = fresh("cus_unlock_1")
    const b = fresh("cus_unlock_1")
    await open(a)
    await open(b)
    await lock(a)
    await lock(b)
    const r = await patch("customer_id=cus_unlock_1", form)
    expect(r.status).toBe(200)
    expect(r.json).toBe(true)
    expect((await request(h.base, "PUT", `${holderPath(a)}/_lock`, { headers: bearer(ADMIN) })).status).toBe(201)
    expect((await request(h.base, "PUT", `${holderPath(b)}/_lock`, { headers: bearer(ADMIN) })).status).toBe(201)

    const bySubscription = await patch(JSON.stringify({ subscription_id: a.holderId }), adminJson)
    expect(bySubscription.json).toBe(true)
    expect((await request(h.base, "PUT", `${holderPath(a)}/_lock`, { headers: bearer(ADMIN) })).status).toBe(201)

    const key = await request(h.base, "PUT", `${holderPath(b)}/_unlock`, { headers: adminJson, body: "{}" })
    expect(key.status).toBe(400)
    const entry = await request(h.base, "GET", `${holderPath(a)}/journal`, { headers: bearer(ADMIN) })
    const entryId = (entry.json as { data: { entries: Array<{ id: string }> } }).data.entries[0]?.id ?? ""
    const byOrder = await patch(`orderid=${entryId}`, form)
    expect(byOrder.status).toBe(200)
    const journal = await h.run(Effect.flatMap(CreditEngine, (e) => e.journal(a)))
    expect(journal.entries.filter((e) => e.kind === "admin-unlock").length).toBe(3)
    expect(journal.entries.at(-1)?.reason).toBe("administrative customer unlock by trackfinity")
  })

  it("answers 400 for none or several lookups, 404 when nothing matches, 409 when ambiguous", async () => {
    expectProblem(await patch("", form), 400, "INVALID_REQUEST")
    expectProblem(await patch("customer_id=a&subscription_id=b", form), 400, "INVALID_REQUEST")
    expectProblem(await patch("customer_id=a&colour=red", form), 400, "INVALID_REQUEST")
    expectProblem(await patch(JSON.stringify({ customer_id: 7 }), adminJson), 400, "INVALID_REQUEST")
    expectProblem(await patch("customer_id=nobody-here", form), 404, "HOLDER_NOT_FOUND")
    await open({ customerId: "cus_x1", holderType: "contracts", holderId: "shared_sub" })
    await open({ customerId: "cus_x2", holderType: "contracts", holderId: "shared_sub" })
    expectProblem(await patch("subscription_id=shared_sub", form), 409, "IDEMPOTENCY_CONFLICT")
  })

  it("lets a credential limited to some customers unlock only those, by customer_id", async () => {
    const limited = { ...bearer(LIMITED), "content-type": "application/x-www-form-urlencoded" }
    await open({ customerId: "cus_a", holderType: "customers", holderId: "cus_a" })
    expect((await patch("customer_id=cus_a", limited)).status).toBe(200)
    expectProblem(await patch("customer_id=cus_b", limited), 403, "FORBIDDEN")
    expectProblem(await patch("subscription_id=cus_a", limited), 403, "FORBIDDEN")
  })
})

describe("Billing Care credit limits", () => {
  const path = (id: string) => `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/${encodeURIComponent(id)}`
  const post = (id: string, body: unknown, headers = adminJson) =>
    request(h.base, "POST", path(id), { headers, body: JSON.stringify(body) })

  it("sets limits (201 Ok), reads them back with the effective limit, and enforces them", async () => {
    const ref = fresh()
    await open(ref, { balanceGroupId: `bg-${ref.holderId}` })
    const r = await post(`bg-${ref.holderId}`, { resourceId: 826, limit: "10.00", thresholds: "50|100", floor: 0 })
    expect(r.status).toBe(201)
    expect(r.text).toBe("Ok")
    const read = await request(h.base, "GET", path(`bg-${ref.holderId}`), { headers: bearer(ADMIN) })
    expect(read.status).toBe(200)
    const body = read.json as {
      data: { balanceGroupId: string; holder: unknown; limits: Array<Record<string, unknown>> }
    }
    expect(body.data.balanceGroupId).toBe(`bg-${ref.holderId}`)
    expect(body.data.holder).toEqual({ type: "contract", id: ref.holderId })
    expect(body.data.limits[0]).toMatchObject({
      resourceId: 826,
      currencyCode: "GBP",
      limit: "10.00",
      thresholds: "50|100",
      effectiveLimit: "10.00",
      minimumCredit: "-10.00",
      overrideCreditLimit: 0,
    })
    const key = await lock(ref)
    expect((await modify(ref, key, { reason: "spend", modifications: [gbp(-1000)] })).status).toBe(200)
    expectProblem(await modify(ref, key, { reason: "spend", modifications: [gbp(-1)] }), 422, "CREDIT_LIMIT_EXCEEDED")
  })

  it("refuses bad amounts (400), non-currency resources (422), unknown balance groups (404) and taken aliases (409)", async () => {
    const ref = fresh()
    await open(ref, { balanceGroupId: `bg-${ref.holderId}` })
    expectProblem(await post(`bg-${ref.holderId}`, { resourceId: 840, limit: "12.001" }), 400, "INVALID_REQUEST")
    expectProblem(await post(`bg-${ref.holderId}`, { resourceId: 840, limit: "12", extra: 1 }), 400, "INVALID_REQUEST")
    expectProblem(await post(`bg-${ref.holderId}`, { limit: "12" }), 400, "INVALID_REQUEST")
    expectProblem(await post(`bg-${ref.holderId}`, { resourceId: 999999, limit: "1" }), 422, "UNSUPPORTED_RESOURCE")
    expectProblem(await post("no-such-group", { resourceId: 840, limit: "1" }), 404, "HOLDER_NOT_FOUND")
    // A balance group another holder claimed is refused when opening, and that holder is not opened…
    await open(fresh(), { balanceGroupId: "shared-bg" })
    const loser = fresh()
    expectProblem(await open(loser, { balanceGroupId: "shared-bg" }), 409, "IDEMPOTENCY_CONFLICT")
    expectProblem(await request(h.base, "GET", holderPath(loser), { headers: bearer(ADMIN) }), 404, "HOLDER_NOT_FOUND")
    // …and holders opened without one have no alias at all: their holder id is no balance group.
    await open({ customerId: "cus_x", holderType: "contracts", holderId: "shared-default" })
    await open({ customerId: "cus_y", holderType: "contracts", holderId: "shared-default" })
    expectProblem(await post("shared-default", { resourceId: 840, limit: "1" }), 404, "HOLDER_NOT_FOUND")
    expectProblem(
      await request(h.base, "GET", path("no-such-group"), { headers: bearer(ADMIN) }),
      404,
      "HOLDER_NOT_FOUND",
    )
  })

  it("answers a credential limited to another customer as if the balance group were unknown (404), changing nothing", async () => {
    const ref = fresh("cus_other")
    await open(ref, { balanceGroupId: `bg-${ref.holderId}` })
    const before = h.control.commits
    const limited = { ...bearer(LIMITED), "content-type": "application/json" }
    expectProblem(await post(`bg-${ref.holderId}`, { resourceId: 840, limit: "1" }, limited), 404, "HOLDER_NOT_FOUND")
    expectProblem(
      await request(h.base, "GET", path(`bg-${ref.holderId}`), { headers: limited }),
      404,
      "HOLDER_NOT_FOUND",
    )
    expect(h.control.commits).toBe(before)
    const own: HolderRef = { customerId: "cus_a", holderType: "contracts", holderId: `own_${++counter}` }
    // Only an administrator gives a balance group, even the holder's own id.
    await open(own, { balanceGroupId: own.holderId })
    expect((await post(own.holderId, { resourceId: 840, limit: "1" }, limited)).status).toBe(201)
  })
})

describe("ops and documentation", () => {
  it("GET /healthz answers 200 without a credential", async () => {
    const r = await request(h.base, "GET", "/healthz")
    expect(r.status).toBe(200)
    expect(r.json).toEqual({ status: "ok" })
  })

  it("GET /docs serves Swagger UI and GET /openapi.json the document, without a credential", async () => {
    const docs = await request(h.base, "GET", "/docs")
    expect(docs.status).toBe(200)
    expect(docs.headers.get("content-type")).toContain("text/html")
    expect(docs.text).toContain("swagger-ui")
    const spec = await request(h.base, "GET", "/openapi.json")
    expect(spec.status).toBe(200)
    expect((spec.json as { openapi: string }).openapi).toMatch(/^3\./)
  })

  it("answers unknown routes and methods with a 404 problem", async () => {
    expectProblem(await request(h.base, "GET", "/nope", { headers: bearer(ADMIN) }), 404, "ROUTE_NOT_FOUND")
    expectProblem(
      await request(h.base, "DELETE", holderPath(fresh()), { headers: bearer(ADMIN) }),
      404,
      "ROUTE_NOT_FOUND",
    )
  })
})
