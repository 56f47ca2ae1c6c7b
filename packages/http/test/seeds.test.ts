/**
 * The three flows this server replaces, sent as their own documentation sends them: only the base
 * URL and the credentials differ.
 */
import { describe, expect, it } from "vitest"
import { ADMIN, request, serverPerFile, TRACK } from "./harness.js"

const h = serverPerFile()

const auth = { Authorization: `Bearer ${ADMIN.token}` }

describe("Bento: lock → modify → unlock", () => {
  it("runs the credit flow with JSON bodies, X-Lock-Key and Idempotency-Key", async () => {
    const credit = "/credit/v1/customers/cus_1001/contracts/sub_42"
    expect((await request(h.base, "PUT", credit, { headers: auth })).status).toBe(201)

    const locked = await request(h.base, "PUT", `${credit}/_lock`, { headers: auth })
    expect(locked.status).toBe(201)
    const { key, expiry } = (locked.json as { data: { lock: { key: string; expiry: string } } }).data.lock
    expect(typeof key).toBe("string")
    expect(Number.isNaN(Date.parse(expiry))).toBe(false)

    const modified = await request(h.base, "PUT", `${credit}/_modify`, {
      headers: { ...auth, "Content-Type": "application/json", "X-Lock-Key": key, "Idempotency-Key": "order-9001" },
      body: JSON.stringify({
        reason: "Account credit for order 9001",
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2500 } }],
      }),
    })
    expect(modified.status).toBe(200)
    expect(modified.json).toMatchObject({
      data: {
        holder: { type: "contract", id: "sub_42" },
        current: { credit: [{ type: "monetary", amount: { currencyCode: "GBP", value: 2500 } }] },
      },
      meta: { entryId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    })

    const unlocked = await request(h.base, "PUT", `${credit}/_unlock`, {
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ key }),
    })
    expect(unlocked.status).toBe(204)

    const read = await request(h.base, "GET", credit, { headers: auth })
    expect(read.json).toMatchObject({
      data: { current: { credit: [{ amount: { currencyCode: "GBP", value: 2500 } }] } },
      meta: {},
    })
  })
})

describe("Trackfinity: PATCH /customer/unlock, form-encoded", () => {
  it("answers true and releases the customer's locks (curl -X PATCH -H api-key -H api-username -d customer_id=…)", async () => {
    const credit = "/credit/v1/customers/123/contracts/456"
    await request(h.base, "PUT", credit, { headers: auth })
    expect((await request(h.base, "PUT", `${credit}/_lock`, { headers: auth })).status).toBe(201)
    expect((await request(h.base, "PUT", `${credit}/_lock`, { headers: auth })).status).toBe(423)

    const curlHeaders = {
      "api-key": TRACK.token,
      "api-username": TRACK.username,
      "Content-Type": "application/x-www-form-urlencoded",
    }
    const r = await request(h.base, "PATCH", "/customer/unlock", { headers: curlHeaders, body: "customer_id=123" })
    expect(r.status).toBe(200)
    expect(r.text).toBe("true")
    expect((await request(h.base, "PUT", `${credit}/_lock`, { headers: auth })).status).toBe(201)

    const bySubscription = await request(h.base, "PATCH", "/customer/unlock", {
      headers: curlHeaders,
      body: "subscription_id=456",
    })
    expect(bySubscription.text).toBe("true")
    expect((await request(h.base, "PUT", `${credit}/_lock`, { headers: auth })).status).toBe(201)
  })
})

describe("Billing Care: POST credit limits of a balance group", () => {
  it("accepts BRM's example body with 201 Ok; the temporary limit is valid for 10 days starting in 30 days", async () => {
    const balanceGroup = "0.0.0.1+-balance_group+82896"
    await request(h.base, "PUT", "/credit/v1/customers/cus_brm/customers/cus_brm", {
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ balanceGroupId: balanceGroup }),
    })
    const path = `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/${balanceGroup}`
    const started = Date.now()
    const r = await request(h.base, "POST", path, {
      headers: { ...auth, "Content-Type": "application/json" },
      body: '{"limit":"12.00","thresholds":null,"floor":"1.00","fixedThresholds":"1.00","resourceId":840,"tempCreditLimit":[{"limit":100,"resourceId":840,"validToUnit":4,"validToOffset":10,"validFromUnit":4,"validFromOffset":30}]}',
    })
    expect(r.status).toBe(201)
    expect(r.text).toBe("Ok")

    const read = await request(h.base, "GET", path, { headers: auth })
    expect(read.status).toBe(200)
    const [limits] = (read.json as { data: { limits: Array<Record<string, unknown>> } }).data.limits
    expect(limits).toMatchObject({
      resourceId: 840,
      currencyCode: "USD",
      limit: "12.00",
      floor: "1.00",
      fixedThresholds: "1.00",
      effectiveLimit: "12.00",
      minimumCredit: "-12.00",
    })
    const [temporary] = (limits?.tempCreditLimit ?? []) as Array<{ limit: string; validFrom: string; validTo: string }>
    expect(temporary?.limit).toBe("100.00")
    const day = 86_400_000
    const from = Date.parse(temporary?.validFrom ?? "")
    expect(from - started).toBeGreaterThanOrEqual(30 * day - 1000)
    expect(from - started).toBeLessThanOrEqual(30 * day + 60_000)
    expect(Date.parse(temporary?.validTo ?? "") - from).toBe(10 * day)
  })
})
