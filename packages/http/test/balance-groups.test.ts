/**
 * Balance groups over HTTP: an alias is a global name that one holder claims
 * for good, first claim wins, atomically; there is no implicit alias; only an administrator
 * credential may claim one. So no credential can make another customer's balance group ambiguous
 * or unreachable, and customers whose holder ids coincide both work on the Billing Care routes.
 */
import type { HolderRef } from "@creditlock/core"
import { describe, expect, it } from "vitest"
import {
  ADMIN,
  adminJson,
  bearer,
  holderPath,
  LIMITED,
  LIMITED_B,
  problemOf,
  request,
  serverPerFile,
} from "./harness.js"

const h = serverPerFile()

const json = { "content-type": "application/json" }
/** LIMITED acts for customer `cus_a` ("c-1"), LIMITED_B for `cus_b` ("c-2"). */
const c1 = { ...bearer(LIMITED), ...json }
const c2 = { ...bearer(LIMITED_B), ...json }

const limitsPath = (id: string) =>
  `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/${encodeURIComponent(id)}`

const open = (ref: HolderRef, headers: Record<string, string>, body?: unknown) =>
  request(h.base, "PUT", holderPath(ref), { headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })

const expectProblem = (r: { status: number; json: unknown }, status: number, code: string) => {
  expect(r.status, JSON.stringify(r.json)).toBe(status)
  expect(problemOf(r.json)?.code).toBe(code)
}

const setLimit = (alias: string, limit: string, headers = adminJson) =>
  request(h.base, "POST", limitsPath(alias), { headers, body: JSON.stringify({ resourceId: 826, limit }) })

const readLimits = async (alias: string, headers: Record<string, string> = bearer(ADMIN)) => {
  const r = await request(h.base, "GET", limitsPath(alias), { headers })
  return {
    status: r.status,
    json: r.json,
    body: r.json as { data: { balanceGroupId: string; holder: unknown; limits: Array<{ limit: string | null }> } },
  }
}

/** The kinds of a holder's journal entries, read by an administrator. */
const journalKinds = async (ref: HolderRef) => {
  const r = await request(h.base, "GET", `${holderPath(ref)}/journal`, { headers: bearer(ADMIN) })
  expect(r.status).toBe(200)
  return (r.json as { data: { entries: Array<{ kind: string }> } }).data.entries.map((e) => e.kind)
}

const gbp = (value: number) => ({ type: "monetary", changeAmount: { currencyCode: "GBP", value } })

const lockAndModify = async (ref: HolderRef, value: number) => {
  const locked = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
  expect(locked.status).toBe(201)
  const key = (locked.json as { data: { lock: { key: string } } }).data.lock.key
  const modified = await request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
    headers: { ...adminJson, "x-lock-key": key },
    body: JSON.stringify({ reason: "spend", modifications: [gbp(value)] }),
  })
  await request(h.base, "PUT", `${holderPath(ref)}/_unlock`, { headers: adminJson, body: JSON.stringify({ key }) })
  return modified
}

describe("a restricted credential cannot squat another customer's balance group", () => {
  it("c-1 opening c-1/contracts/sub-777 leaves c-2's balance group sub-777 unambiguous and reachable", async () => {
    const theirs: HolderRef = { customerId: "cus_b", holderType: "contracts", holderId: "sub-777" }
    const mine: HolderRef = { customerId: "cus_a", holderType: "contracts", holderId: "sub-777" }
    expect((await open(theirs, adminJson, { balanceGroupId: "sub-777" })).status).toBe(201)

    // c-1 may open its own contract, but gets no alias from it, and may not claim one.
    const opened = await open(mine, c1, {})
    expect(opened.status).toBe(201)
    expect((opened.json as { data: { balanceGroupId: unknown } }).data.balanceGroupId).toBeNull()
    expectProblem(await open(mine, c1, { balanceGroupId: "sub-777" }), 403, "FORBIDDEN")
    expectProblem(await open(mine, c1, { balanceGroupId: "sub-777-x" }), 403, "FORBIDDEN")

    // The administrator reaches c-2's holder (not an ambiguity), and so does c-2's own credential.
    expect((await setLimit("sub-777", "7.00")).status).toBe(201)
    const byAdmin = await readLimits("sub-777")
    expect(byAdmin.status, JSON.stringify(byAdmin.json)).toBe(200)
    expect(byAdmin.body.data.limits[0]?.limit).toBe("7.00")
    const byOwner = await readLimits("sub-777", c2)
    expect(byOwner.status, JSON.stringify(byOwner.json)).toBe(200)
    expect((await setLimit("sub-777", "8.00", c2)).status).toBe(201)
    // The limits went to c-2's holder, none to c-1's.
    expect((await journalKinds(theirs)).filter((k) => k === "limits")).toHaveLength(2)
    expect(await journalKinds(mine)).toEqual(["opened"])
    // To c-1, c-2's balance group is like an unknown one.
    expectProblem(await request(h.base, "GET", limitsPath("sub-777"), { headers: c1 }), 404, "HOLDER_NOT_FOUND")
  })

  it("c-1 opening first leaves c-2's future balance group free to claim", async () => {
    const mine: HolderRef = { customerId: "cus_a", holderType: "contracts", holderId: "sub-778" }
    const theirs: HolderRef = { customerId: "cus_b", holderType: "contracts", holderId: "sub-778" }
    expect((await open(mine, c1, {})).status).toBe(201)
    expectProblem(await open(mine, c1, { balanceGroupId: "sub-778" }), 403, "FORBIDDEN")
    expectProblem(await readLimits("sub-778"), 404, "HOLDER_NOT_FOUND")

    const claimed = await open(theirs, adminJson, { balanceGroupId: "sub-778" })
    expect(claimed.status, JSON.stringify(claimed.json)).toBe(201)
    expect((await setLimit("sub-778", "3.00", c2)).status).toBe(201)
    const byOwner = await readLimits("sub-778", c2)
    expect(byOwner.status).toBe(200)
    expect(byOwner.body.data.balanceGroupId).toBe("sub-778")
    expect(byOwner.body.data.limits[0]?.limit).toBe("3.00")
    expect(await journalKinds(mine)).toEqual(["opened"])
  })
})

describe("customers whose holder ids coincide", () => {
  it("both work on the Billing Care routes once an administrator gives them distinct aliases", async () => {
    const x: HolderRef = { customerId: "cus_x7", holderType: "contracts", holderId: "shared-7" }
    const y: HolderRef = { customerId: "cus_y7", holderType: "contracts", holderId: "shared-7" }
    expect((await open(x, adminJson, { balanceGroupId: "bg-x-shared-7" })).status).toBe(201)
    expect((await open(y, adminJson, { balanceGroupId: "bg-y-shared-7" })).status).toBe(201)
    expect((await setLimit("bg-x-shared-7", "5.00")).status).toBe(201)
    expect((await setLimit("bg-y-shared-7", "20.00")).status).toBe(201)

    const readX = await readLimits("bg-x-shared-7")
    const readY = await readLimits("bg-y-shared-7")
    expect(readX.body.data).toMatchObject({
      balanceGroupId: "bg-x-shared-7",
      holder: { type: "contract", id: "shared-7" },
    })
    expect(readY.body.data).toMatchObject({
      balanceGroupId: "bg-y-shared-7",
      holder: { type: "contract", id: "shared-7" },
    })
    expect(readX.body.data.limits[0]?.limit).toBe("5.00")
    expect(readY.body.data.limits[0]?.limit).toBe("20.00")

    // Each limit is enforced on its own customer's holder.
    expectProblem(await lockAndModify(x, -501), 422, "CREDIT_LIMIT_EXCEEDED")
    expect((await lockAndModify(x, -500)).status).toBe(200)
    expect((await lockAndModify(y, -2000)).status).toBe(200)
    expect(await journalKinds(x)).toEqual(["opened", "limits", "modification"])
    expect(await journalKinds(y)).toEqual(["opened", "limits", "modification"])
  })
})

describe("racing claims", () => {
  it("of one new alias by several holders at once: exactly one succeeds (201), the others get 409 and open nothing", async () => {
    h.control.loadDelayMillis = 40
    try {
      for (let round = 0; round < 5; round++) {
        const alias = `race-alias-${round}`
        const racers: Array<HolderRef> = [0, 1, 2, 3].map((i) => ({
          customerId: `cus_race_${i}`,
          holderType: "contracts",
          holderId: `race-${round}`,
        }))
        const answers = await Promise.all(racers.map((ref) => open(ref, adminJson, { balanceGroupId: alias })))
        const statuses = answers.map((r) => r.status).sort()
        expect(statuses, JSON.stringify(answers.map((r) => r.json))).toEqual([201, 409, 409, 409])
        for (const r of answers) if (r.status === 409) expectProblem(r, 409, "IDEMPOTENCY_CONFLICT")
        const winner = racers[answers.findIndex((r) => r.status === 201)]
        // The alias names the winner; the losers were not opened at all.
        expect((await setLimit(alias, "1.00")).status).toBe(201)
        for (const ref of racers) {
          const read = await request(h.base, "GET", holderPath(ref), { headers: bearer(ADMIN) })
          if (ref === winner) {
            expect(read.status).toBe(200)
            expect(await journalKinds(ref)).toEqual(["opened", "limits"])
          } else expectProblem(read, 404, "HOLDER_NOT_FOUND")
        }
      }
    } finally {
      h.control.loadDelayMillis = 0
    }
  })

  it("of one alias by the same holder twice at once: one creates it (201), the other finds it open (200)", async () => {
    h.control.loadDelayMillis = 40
    try {
      const ref: HolderRef = { customerId: "cus_race_same", holderType: "contracts", holderId: "race-same" }
      const answers = await Promise.all([0, 1].map(() => open(ref, adminJson, { balanceGroupId: "race-same-alias" })))
      expect(answers.map((r) => r.status).sort()).toEqual([200, 201])
      for (const r of answers)
        expect((r.json as { data: { balanceGroupId: string } }).data.balanceGroupId).toBe("race-same-alias")
    } finally {
      h.control.loadDelayMillis = 0
    }
    expect((await readLimits("race-same-alias")).status).toBe(200)
  })
})
