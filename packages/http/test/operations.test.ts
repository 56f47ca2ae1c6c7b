/**
 * What an operator relies on: liveness and readiness probes, request ids in responses and log
 * lines, 415 for a body without a JSON media type, and how a standalone server drains.
 */
import * as Http from "node:http"
import { MemoryStorage } from "@creditlock/memory"
import { Duration, Redacted } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import * as Server from "../src/Server.js"
import { ADMIN, adminJson, holderPath, problemOf, request, serverPerFile, startServer } from "./harness.js"

const h = serverPerFile()
const own = { customerId: "cus_ops", holderType: "contracts", holderId: "ops-1" } as const

interface RawAnswer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
}

/** A request through node:http, sending exactly the headers given (fetch adds a Content-Type). */
const raw = (
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
  agent?: Http.Agent,
): Promise<RawAnswer> =>
  new Promise((resolve, reject) => {
    const req = Http.request(
      `${base}${path}`,
      { method, headers, ...(agent === undefined ? {} : { agent }) },
      (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => {
          text += chunk
        })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
        res.on("error", reject)
      },
    )
    req.on("error", reject)
    req.setTimeout(10_000, () => req.destroy(new Error("no answer within 10 s")))
    req.end(body)
  })

describe("probes", () => {
  it("/healthz answers 200 without touching the storage; /readyz answers 503 while the storage does not", async () => {
    expect((await request(h.base, "GET", "/readyz")).json).toEqual({ status: "ok" })
    h.control.failing = "unavailable"
    try {
      expect((await request(h.base, "GET", "/healthz")).json).toEqual({ status: "ok" })
      const ready = await request(h.base, "GET", "/readyz")
      expect(ready.status).toBe(503)
      expect(problemOf(ready.json)?.code).toBe("STORAGE_UNAVAILABLE")
    } finally {
      h.control.failing = undefined
    }
    expect((await request(h.base, "GET", "/readyz")).status).toBe(200)
  })

  it("/readyz answers 503 SHUTTING_DOWN while the server drains, /healthz still 200", async () => {
    let draining = false
    const { handler, dispose } = Server.toWebHandler({
      storage: MemoryStorage.layer(),
      credentials: [{ token: Redacted.make(ADMIN.token), customers: ["*"] }],
      logRequests: false,
      draining: () => draining,
    })
    try {
      const get = (path: string) => handler(new Request(`http://mounted.test${path}`))
      expect((await get("/readyz")).status).toBe(200)
      draining = true
      const ready = await get("/readyz")
      expect(ready.status).toBe(503)
      expect(problemOf(await ready.json())?.code).toBe("SHUTTING_DOWN")
      expect((await get("/healthz")).status).toBe(200)
    } finally {
      await dispose()
    }
  })
})

describe("request ids", () => {
  it("keeps a valid X-Request-Id, replaces an invalid one, and logs the id with the request", async () => {
    const given = await request(h.base, "GET", "/healthz", { headers: { "x-request-id": "client-id.42:a_b" } })
    expect(given.headers.get("x-request-id")).toBe("client-id.42:a_b")
    const invalid = await request(h.base, "GET", "/healthz", { headers: { "x-request-id": "has spaces\tand tabs" } })
    const generated = invalid.headers.get("x-request-id") ?? ""
    expect(generated).toMatch(/^[0-9a-f-]{36}$/)
    const missing = await request(h.base, "GET", holderPath(own), { headers: adminJson })
    const other = missing.headers.get("x-request-id") ?? ""
    expect(other).toMatch(/^[0-9a-f-]{36}$/)
    expect(other).not.toBe(generated)
    const lines = h.logs.map((line) => JSON.parse(line) as { annotations: Record<string, unknown> })
    const ids = lines.filter((l) => l.annotations.route !== undefined).map((l) => l.annotations.requestId)
    expect(ids).toEqual(expect.arrayContaining(["client-id.42:a_b", generated, other]))
    expect(
      lines.filter((l) => l.annotations.route !== undefined).every((l) => typeof l.annotations.requestId === "string"),
    ).toBe(true)
  })

  it("sends the request id with problem responses too", async () => {
    const r = await request(h.base, "GET", "/nowhere", { headers: { "x-request-id": "lost-route" } })
    expect(r.status).toBe(404)
    expect(r.headers.get("x-request-id")).toBe("lost-route")
  })
})

describe("media types", () => {
  it("answers 415 to a JSON body without Content-Type, without echoing the body", async () => {
    await request(h.base, "PUT", holderPath(own), { headers: adminJson })
    const body = JSON.stringify({ reason: "no-media-type-body-marker", modifications: [] })
    const r = await raw(
      h.base,
      "PUT",
      `${holderPath(own)}/_modify`,
      {
        authorization: `Bearer ${ADMIN.token}`,
        "x-lock-key": "whatever",
        "content-length": String(Buffer.byteLength(body)),
      },
      body,
    )
    expect(r.status).toBe(415)
    expect(problemOf(JSON.parse(r.text))?.code).toBe("UNSUPPORTED_MEDIA_TYPE")
    expect(r.text).not.toContain("no-media-type-body-marker")
  })

  it("still accepts a request without a body and without Content-Type", async () => {
    const r = await raw(h.base, "PUT", `${holderPath({ ...own, holderId: "ops-empty" })}`, {
      authorization: `Bearer ${ADMIN.token}`,
    })
    expect(r.status).toBe(201)
  })
})

describe("/docs and /openapi.json", () => {
  it("are compressed when accepted, carry ETag and Cache-Control, and answer 304 to a matching If-None-Match", async () => {
    const { gunzipSync, brotliDecompressSync } = await import("node:zlib")
    const plain = await raw(h.base, "GET", "/docs", {})
    expect(plain.status).toBe(200)
    expect(plain.headers["content-encoding"]).toBeUndefined()
    expect(plain.text).toContain("swagger-ui")
    const etag = plain.headers.etag ?? ""
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{32}"$/)
    expect(plain.headers["cache-control"]).toBe("public, max-age=300")
    expect(plain.headers.vary).toBe("accept-encoding")

    const bytes = (encoding: string) =>
      new Promise<{ headers: Http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        Http.get(`${h.base}/docs`, { headers: { "accept-encoding": encoding } }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (chunk: Buffer) => chunks.push(chunk))
          res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }))
        }).on("error", reject)
      })
    const br = await bytes("gzip, deflate, br")
    expect(br.headers["content-encoding"]).toBe("br")
    expect(br.headers.etag).toBe(etag)
    expect(brotliDecompressSync(br.body).toString("utf8")).toBe(plain.text)
    expect(br.body.length).toBeLessThan(Buffer.byteLength(plain.text) / 2)
    const gzip = await bytes("gzip")
    expect(gzip.headers["content-encoding"]).toBe("gzip")
    expect(gunzipSync(gzip.body).toString("utf8")).toBe(plain.text)
    expect((await bytes("br;q=0, identity")).headers["content-encoding"]).toBeUndefined()

    const cached = await raw(h.base, "GET", "/docs", { "if-none-match": etag })
    expect(cached.status).toBe(304)
    expect(cached.text).toBe("")
    expect((await raw(h.base, "GET", "/docs", { "if-none-match": '"other"' })).status).toBe(200)

    const spec = await raw(h.base, "GET", "/openapi.json", {})
    expect(spec.headers.etag).toMatch(/^"/)
    expect(spec.headers.etag).not.toBe(etag)
    expect((await raw(h.base, "GET", "/openapi.json", { "if-none-match": spec.headers.etag ?? "" })).status).toBe(304)
  })
})

describe("draining", () => {
  const agents: Array<Http.Agent> = []
  afterAll(() => {
    for (const agent of agents) agent.destroy()
  })

  it("answers a request in flight with Connection: close, closes idle keep-alive connections, and finishes", async () => {
    const server = await startServer({ drainTimeout: Duration.seconds(5) })
    const agent = new Http.Agent({ keepAlive: true, maxSockets: 4 })
    agents.push(agent)
    await raw(server.base, "PUT", holderPath(own), { authorization: `Bearer ${ADMIN.token}` }, undefined, agent)
    // Two idle keep-alive connections and one in flight when the server starts closing.
    await Promise.all([
      raw(server.base, "GET", "/healthz", {}, undefined, agent),
      raw(server.base, "GET", "/healthz", {}, undefined, agent),
    ])
    server.control.loadDelayMillis = 300
    const inFlight = raw(
      server.base,
      "GET",
      holderPath(own),
      { authorization: `Bearer ${ADMIN.token}` },
      undefined,
      agent,
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    await server.close()
    const answered = await inFlight
    expect(answered.status).toBe(200)
    expect(answered.headers.connection).toBe("close")
    await expect(raw(server.base, "GET", "/healthz", {})).rejects.toThrow()
  })

  it("closes the connections still busy at the drain deadline, then releases the store", async () => {
    const server = await startServer({ drainTimeout: Duration.millis(300) })
    await request(server.base, "PUT", holderPath(own), { headers: adminJson })
    server.control.loadDelayMillis = 20_000
    const inFlight = raw(server.base, "GET", holderPath(own), { authorization: `Bearer ${ADMIN.token}` })
    inFlight.catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 100))
    const started = Date.now()
    await server.close()
    // Well before the 20 s the storage would have taken: the deadline, not the request, ended it.
    expect(Date.now() - started).toBeLessThan(10_000)
    // Its connection was closed by the server, not given up by the client.
    await expect(inFlight).rejects.toThrow(/socket hang up|ECONNRESET/)
    expect(server.logs.some((line) => line.includes("drain deadline"))).toBe(true)
  })
})
