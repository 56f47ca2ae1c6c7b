import { connect } from "node:net"
import { Duration } from "effect"
import { describe, expect, it } from "vitest"
import {
  ADMIN,
  adminJson,
  bearer,
  holderPath,
  LIMITED,
  problemOf,
  request,
  serverPerFile,
  startServer,
  TRACK,
} from "./harness.js"

const h = serverPerFile()

const own = { customerId: "cus_a", holderType: "contracts", holderId: "sec_1" } as const
const other = { customerId: "cus_b", holderType: "contracts", holderId: "sec_2" } as const

const expectStatus = (r: { status: number; json: unknown }, status: number, code: string) => {
  expect(r.status, JSON.stringify(r.json)).toBe(status)
  expect(problemOf(r.json)?.code).toBe(code)
  expect(problemOf(r.json)?.status).toBe(String(status))
}

describe("authentication", () => {
  it("refuses a request without a credential with 401 and WWW-Authenticate", async () => {
    const r = await request(h.base, "GET", holderPath(own))
    expectStatus(r, 401, "UNAUTHORIZED")
    expect(problemOf(r.json)?.title).toBe("Unauthorised")
    expect(r.headers.get("www-authenticate")).toContain("Bearer")
  })

  it("refuses unknown or malformed credentials with 401", async () => {
    const cases: Array<Record<string, string>> = [
      { authorization: "Bearer not-a-token" },
      { authorization: `Basic ${Buffer.from(`x:${ADMIN.token}`).toString("base64")}` },
      { authorization: `Bearer${ADMIN.token}` },
      { authorization: `Bearer ${ADMIN.token}x` },
      { authorization: `Bearer ${TRACK.token}` },
      { "api-key": TRACK.token },
      { "api-key": TRACK.token, "api-username": "someone-else" },
      { "api-key": ADMIN.token, "api-username": "admin" },
      { "api-key": "", "api-username": TRACK.username },
    ]
    for (const headers of cases) {
      const r = await request(h.base, "GET", holderPath(own), { headers })
      expectStatus(r, 401, "UNAUTHORIZED")
      expect(r.text).not.toContain(ADMIN.token)
      expect(r.text).not.toContain(TRACK.token)
    }
  })

  it("accepts Bearer for credentials without a username, api-key + api-username for those with one", async () => {
    await request(h.base, "PUT", holderPath(own), { headers: adminJson })
    expect((await request(h.base, "GET", holderPath(own), { headers: bearer(ADMIN) })).status).toBe(200)
    expect(
      (await request(h.base, "GET", holderPath(own), { headers: { authorization: `bearer   ${ADMIN.token}` } })).status,
    ).toBe(200)
    const track = { "api-key": TRACK.token, "api-username": TRACK.username }
    expect((await request(h.base, "GET", holderPath(own), { headers: track })).status).toBe(200)
  })

  it("refuses a credential acting on a customer outside its list with 403, on every holder route", async () => {
    await request(h.base, "PUT", holderPath(other), { headers: adminJson })
    const headers = { ...bearer(LIMITED), "content-type": "application/json" }
    const modifyBody = JSON.stringify({
      reason: "r",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 1 } }],
    })
    const calls: Array<[string, string, string | undefined, Record<string, string>]> = [
      ["GET", holderPath(other), undefined, {}],
      ["PUT", holderPath(other), "{}", {}],
      ["PUT", `${holderPath(other)}/_lock`, undefined, {}],
      ["PUT", `${holderPath(other)}/_modify`, modifyBody, { "x-lock-key": "k" }],
      ["PUT", `${holderPath(other)}/_unlock`, JSON.stringify({ key: "k" }), {}],
      ["GET", `${holderPath(other)}/journal`, undefined, {}],
    ]
    const before = h.control.commits
    for (const [method, path, body, extra] of calls) {
      const r = await request(h.base, method, path, {
        headers: { ...headers, ...extra },
        ...(body === undefined ? {} : { body }),
      })
      expectStatus(r, 403, "FORBIDDEN")
    }
    expect(h.control.commits).toBe(before)
    // A 403 names no customer.
    for (const [method, path] of calls) {
      const r = await request(h.base, method, path, { headers })
      expect(r.text).not.toContain(other.customerId)
    }
    // The same credential may act on its own customer.
    expect((await request(h.base, "PUT", `${holderPath(own)}/_lock`, { headers })).status).toBe(201)
  })
})

describe("balance groups and restricted credentials", () => {
  const limitPath = (id: string) =>
    `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/${encodeURIComponent(id)}`
  const limited = { ...bearer(LIMITED), "content-type": "application/json" }

  it("only an administrator may set a balanceGroupId, whatever its value (even the holder's own id)", async () => {
    const mine = { customerId: "cus_a", holderType: "contracts", holderId: "bg_own_1" } as const
    const before = h.control.commits
    for (const balanceGroupId of ["0.0.0.1+-balance_group+squatted", "bg_own_1"]) {
      const squat = await request(h.base, "PUT", holderPath(mine), {
        headers: limited,
        body: JSON.stringify({ balanceGroupId }),
      })
      expectStatus(squat, 403, "FORBIDDEN")
      expect(squat.text).not.toContain("cus_a")
    }
    expect(h.control.commits).toBe(before)
    const plain = await request(h.base, "PUT", holderPath(mine), { headers: limited, body: "{}" })
    expect(plain.status).toBe(201)
    expect((plain.json as { data: { balanceGroupId: unknown } }).data.balanceGroupId).toBeNull()
    // Re-opening its own holder to attach one is refused as well; an administrator may.
    const attach = JSON.stringify({ balanceGroupId: "bg_own_1" })
    expectStatus(await request(h.base, "PUT", holderPath(mine), { headers: limited, body: attach }), 403, "FORBIDDEN")
    const byAdmin = await request(h.base, "PUT", holderPath(mine), { headers: adminJson, body: attach })
    expect(byAdmin.status).toBe(200)
    expect((byAdmin.json as { data: { balanceGroupId: unknown } }).data.balanceGroupId).toBe("bg_own_1")
  })

  it("answers another customer's balance group like an unknown one (404), revealing nothing", async () => {
    const theirs = { customerId: "cus_secret_42", holderType: "contracts", holderId: "bg_victim" } as const
    await request(h.base, "PUT", holderPath(theirs), {
      headers: adminJson,
      body: JSON.stringify({ balanceGroupId: "bg-victim-group" }),
    })
    const unknown = await request(h.base, "GET", limitPath("bg-no-such-group"), { headers: limited })
    for (const [method, body] of [
      ["GET", undefined],
      ["POST", JSON.stringify({ resourceId: 840, limit: "1.00" })],
    ] as const) {
      const r = await request(h.base, method, limitPath("bg-victim-group"), {
        headers: limited,
        ...(body === undefined ? {} : { body }),
      })
      expectStatus(r, 404, problemOf(unknown.json)?.code ?? "")
      expect(r.text).not.toContain("cus_secret_42")
    }
    expect((await request(h.base, "GET", limitPath("bg-victim-group"), { headers: adminJson })).status).toBe(200)
  })
})

describe("request bodies", () => {
  const unlockPath = `${holderPath(own)}/_unlock`

  it("refuses bodies over 64 KiB with 413, declared or streamed", async () => {
    const big = JSON.stringify({ key: "x".repeat(70 * 1024) })
    const before = h.control.commits
    expectStatus(await request(h.base, "PUT", unlockPath, { headers: adminJson, body: big }), 413, "PAYLOAD_TOO_LARGE")
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024))
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 6; i++) controller.enqueue(chunk)
        controller.close()
      },
    })
    const response = await fetch(`${h.base}${unlockPath}`, {
      method: "PUT",
      headers: adminJson,
      body: stream,
      duplex: "half",
      signal: AbortSignal.timeout(10_000),
    } as RequestInit)
    expect(response.headers.get("transfer-encoding") ?? "").not.toContain("gzip")
    expect(response.status).toBe(413)
    expect(problemOf(await response.json())?.code).toBe("PAYLOAD_TOO_LARGE")
    // Far larger streamed bodies still get their 413, not a reset connection.
    const huge = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 128; i++) controller.enqueue(chunk)
        controller.close()
      },
    })
    const hugeResponse = await fetch(`${h.base}${unlockPath}`, {
      method: "PUT",
      headers: adminJson,
      body: huge,
      duplex: "half",
      signal: AbortSignal.timeout(10_000),
    } as RequestInit)
    expect(hugeResponse.status).toBe(413)
    expect(h.control.commits).toBe(before)
    // Exactly at the limit is accepted as a body (then refused for what it says).
    const padded = JSON.stringify({ key: "k" }).padEnd(64 * 1024, " ")
    expectStatus(
      await request(h.base, "PUT", unlockPath, { headers: adminJson, body: padded }),
      423,
      "LOCK_KEY_MISMATCH",
    )
  })

  it("a client that goes away in the middle of its body changes nothing, and the server serves on", async () => {
    const before = h.control.commits
    const { port } = new URL(h.base)
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(Number(port), "127.0.0.1", () => {
          const head = [
            `PUT ${unlockPath} HTTP/1.1`,
            "host: 127.0.0.1",
            `authorization: ${adminJson.authorization}`,
            "content-type: application/json",
            "content-length: 1000",
            `x-request-id: abandoned-${i}`,
            "",
            "",
          ].join("\r\n")
          socket.write(`${head}{"key":"`, () => {
            socket.destroy()
            resolve()
          })
        })
        socket.on("error", reject)
      })
    }
    expectStatus(
      await request(h.base, "PUT", unlockPath, { headers: adminJson, body: JSON.stringify({ key: "k" }) }),
      423,
      "LOCK_KEY_MISMATCH",
    )
    expect(h.control.commits).toBe(before)
    // Each abandoned request ended (its log line is written when it does), none hangs.
    const ended = () =>
      h.logs.filter((line) => /"requestId":"abandoned-\d"/.test(line) && line.includes('"route"')).length
    for (let waited = 0; ended() < 5 && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50))
    expect(ended()).toBe(5)
  })

  it("refuses media types no route accepts with 415, invalid JSON or UTF-8 with 400", async () => {
    for (const type of [
      "text/plain",
      "multipart/form-data; boundary=x",
      "application/xml",
      "application/octet-stream",
    ]) {
      const r = await request(h.base, "PUT", unlockPath, {
        headers: { ...bearer(ADMIN), "content-type": type },
        body: '{"key":"k"}',
      })
      expectStatus(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    }
    expectStatus(
      await request(h.base, "PUT", unlockPath, { headers: adminJson, body: '{"key":' }),
      400,
      "INVALID_REQUEST",
    )
    expectStatus(
      await request(h.base, "PUT", unlockPath, { headers: adminJson, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }),
      400,
      "INVALID_REQUEST",
    )
  })

  it("refuses empty path segments with 400 rather than routing them elsewhere", async () => {
    const before = h.control.commits
    const r = await request(h.base, "PUT", "/credit/v1/customers/cus_a/contracts//_lock", { headers: bearer(ADMIN) })
    expectStatus(r, 400, "INVALID_REQUEST")
    expect(h.control.commits).toBe(before)
  })

  it("refuses malformed percent-encoding in the path with 400", async () => {
    expectStatus(
      await request(h.base, "GET", "/credit/v1/customers/%E0%A4%A/contracts/x", { headers: bearer(ADMIN) }),
      400,
      "INVALID_REQUEST",
    )
  })
})

describe("rate limit", () => {
  it("refuses requests beyond a credential's limit with 429 and Retry-After; other credentials are unaffected", async () => {
    const limited = await startServer({ rateLimit: { limit: 3, window: Duration.minutes(1) } })
    try {
      for (let i = 0; i < 3; i++) {
        expect((await request(limited.base, "GET", holderPath(own), { headers: bearer(ADMIN) })).status).toBe(404)
      }
      const r = await request(limited.base, "GET", holderPath(own), { headers: bearer(ADMIN) })
      expectStatus(r, 429, "RATE_LIMITED")
      const retryAfter = Number(r.headers.get("retry-after"))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
      expect((await request(limited.base, "GET", holderPath(own), { headers: bearer(LIMITED) })).status).toBe(404)
      // Health is not rate limited (the documents are: see the OpenAPI tests).
      expect((await request(limited.base, "GET", "/healthz")).status).toBe(200)
    } finally {
      await limited.close()
    }
  })
})

describe("failures", () => {
  it("answers 503 with Retry-After when the storage is unavailable", async () => {
    h.control.failing = "unavailable"
    try {
      const r = await request(h.base, "GET", holderPath(own), { headers: bearer(ADMIN) })
      expectStatus(r, 503, "STORAGE_UNAVAILABLE")
      expect(r.headers.get("retry-after")).toBe("1")
      expectStatus(await request(h.base, "GET", "/readyz"), 503, "STORAGE_UNAVAILABLE")
      // Liveness does not depend on the storage: the process still serves.
      expect((await request(h.base, "GET", "/healthz")).status).toBe(200)
    } finally {
      h.control.failing = undefined
    }
  })

  it("answers a defect with 500 and no internals, and logs it", async () => {
    h.control.failing = "defect"
    try {
      const r = await request(h.base, "PUT", `${holderPath(own)}/_lock`, { headers: bearer(ADMIN) })
      expectStatus(r, 500, "INTERNAL_ERROR")
      expect(r.text).not.toContain("SECRET-INTERNAL-DETAIL")
      expect(r.text).not.toMatch(/at .*\.ts/)
    } finally {
      h.control.failing = undefined
    }
    expect(h.logs.some((line) => line.includes("SECRET-INTERNAL-DETAIL"))).toBe(true)
  })
})

describe("shutdown", () => {
  it("lets requests in flight finish before the server and the store are released", async () => {
    const server = await startServer()
    await request(server.base, "PUT", holderPath(own), { headers: adminJson })
    server.control.loadDelayMillis = 300
    const inFlight = request(server.base, "PUT", `${holderPath(own)}/_lock`, { headers: bearer(ADMIN) })
    await new Promise((resolve) => setTimeout(resolve, 100))
    let closed = false
    const closing = server.close().then(() => {
      closed = true
    })
    const response = await inFlight
    expect(response.status).toBe(201)
    await closing
    expect(closed).toBe(true)
    await expect(request(server.base, "GET", "/healthz")).rejects.toThrow()
  })
})

describe("request logs", () => {
  it("log method, route template, status and duration, and never a token, a lock key or a body", async () => {
    const ref = { customerId: "cus_log", holderType: "contracts", holderId: "log_1" } as const
    await request(h.base, "PUT", holderPath(ref), { headers: adminJson })
    const locked = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
    const key = (locked.json as { data: { lock: { key: string } } }).data.lock.key
    // Bodies with a marker of their own: accepted, refused by the schema, not JSON, and without a
    // JSON Content-Type.
    const bodies = {
      accepted: "log-body-marker-accepted-4f1a",
      refused: "log-body-marker-refused-9c2e",
      broken: "log-body-marker-broken-71d0",
      untyped: "log-body-marker-untyped-b83f",
    }
    const modified = await request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
      headers: { ...adminJson, "x-lock-key": key },
      body: JSON.stringify({
        reason: bodies.accepted,
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 5 } }],
      }),
    })
    expect(modified.status).toBe(200)
    const refused = await request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
      headers: { ...adminJson, "x-lock-key": key },
      body: JSON.stringify({ reason: "r", modifications: [], [bodies.refused]: bodies.refused }),
    })
    expect(refused.status).toBe(400)
    const broken = await request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
      headers: { ...adminJson, "x-lock-key": key },
      body: `{"reason": "${bodies.broken}", `,
    })
    expect(broken.status).toBe(400)
    const untyped = await request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
      headers: { ...bearer(ADMIN), "x-lock-key": key },
      body: JSON.stringify({ reason: bodies.untyped }),
    })
    expect(untyped.status).toBe(415)
    await request(h.base, "PUT", `${holderPath(ref)}/_unlock`, { headers: adminJson, body: JSON.stringify({ key }) })
    await request(h.base, "PATCH", "/customer/unlock", {
      headers: {
        "api-key": TRACK.token,
        "api-username": TRACK.username,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "customer_id=cus_log",
    })
    const lines = h.logs.map((line) => JSON.parse(line) as { message: unknown; annotations: Record<string, unknown> })
    const requests = lines.filter((l) => l.annotations.route !== undefined)
    const lockLine = requests.find(
      (l) =>
        l.annotations.route === "/credit/v1/customers/:customerId/:holderType/:holderId/_lock" &&
        l.annotations.status === 201,
    )
    expect(lockLine?.annotations.method).toBe("PUT")
    expect(typeof lockLine?.annotations.durationMs).toBe("number")
    expect(requests.some((l) => l.annotations.route === "/customer/unlock" && l.annotations.status === 200)).toBe(true)
    const all = h.logs.join("\n")
    for (const secret of [ADMIN.token, LIMITED.token, TRACK.token, key]) expect(all).not.toContain(secret)
    for (const marker of Object.values(bodies)) expect(all).not.toContain(marker)
    // The refused requests were logged all the same.
    expect(requests.filter((l) => l.annotations.status === 400).length).toBeGreaterThanOrEqual(2)
    expect(requests.some((l) => l.annotations.status === 415)).toBe(true)
  })
})
