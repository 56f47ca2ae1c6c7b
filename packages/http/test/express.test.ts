/**
 * `createCreditHandler` mounted for real: as a `node:http` request listener, and as middleware in
 * Express 4 and Express 5 — at "/" and under a mount path, with no body parser, with a global
 * `express.json()`, with `express.urlencoded({ extended: false })` and with both. Whatever parsed
 * the body first, the API serves the request the client sent: the custom balance group is kept,
 * modifications apply (and replay under their Idempotency-Key), both forms of the customer unlock
 * work, and the body limit, the JSON nesting bound and authentication answer as without a parser.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { CreditError } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { request } from "@creditlock/test-suite/http"
import { HttpApi } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CreditLockApi } from "../src/Api.js"
import { type CreditHandler, createCreditHandler, isCreditApiPath } from "../src/index.js"
import { JSON_DEPTH_DETAIL } from "../src/internal/jsonDepth.js"
import { problemOf } from "./harness.js"

/** The part of Express's API these tests use (the same in Express 4 and 5). */
type Next = (error?: unknown) => void
type Middleware = (request: IncomingMessage, response: ServerResponse, next: Next) => void
interface ExpressApp {
  use(handler: Middleware): void
  use(path: string, handler: Middleware): void
  get(
    path: string,
    handler: (request: IncomingMessage, response: ServerResponse & { send(body: string): void }) => void,
  ): void
  listen(port: number, host: string, callback: () => void): Server
}
interface Express {
  (): ExpressApp
  json(): Middleware
  urlencoded(options: { readonly extended: boolean }): Middleware
  text(options: { readonly type: string }): Middleware
  raw(options: { readonly type: string }): Middleware
}

const require = createRequire(import.meta.url)
const expressVersions: ReadonlyArray<readonly [name: string, express: Express, version: string]> = (
  ["express4", "express5"] as const
).map((name) => [name, require(name) as Express, (require(`${name}/package.json`) as { version: string }).version])

const ADMIN = { token: "express-admin-token-0001", customers: ["*"] }
const TRACK = { token: "express-track-key-0002", username: "trackfinity", customers: ["*"] }
const admin = { authorization: `Bearer ${ADMIN.token}` }
const adminJson = { ...admin, "content-type": "application/json" }
const track = { "api-key": TRACK.token, "api-username": TRACK.username }

const mountCredit = () =>
  createCreditHandler({ storage: MemoryStorage.layer(), credentials: [ADMIN, TRACK], logRequests: false })

const listen = async (listener: Server): Promise<{ readonly base: string; readonly close: () => Promise<void> }> => {
  await new Promise<void>((resolve) => (listener.listening ? resolve() : listener.once("listening", resolve)))
  return {
    base: `http://127.0.0.1:${(listener.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        listener.close((error) => (error === undefined ? resolve() : reject(error)))
        listener.closeAllConnections()
      }),
  }
}

type Parsers = "none" | "json" | "urlencoded" | "json+urlencoded"
const parserSets: ReadonlyArray<Parsers> = ["none", "json", "urlencoded", "json+urlencoded"]

/** An Express app with the given global parsers, the API at `mountPath`, and a route of its own. */
const expressApp = async (express: Express, parsers: Parsers, mountPath: string, credit: CreditHandler) => {
  const app = express()
  if (parsers === "json" || parsers === "json+urlencoded") app.use(express.json())
  if (parsers === "urlencoded" || parsers === "json+urlencoded") app.use(express.urlencoded({ extended: false }))
  if (mountPath === "/") app.use(credit.handler)
  else app.use(mountPath, credit.handler)
  app.get("/app/ping", (_request, response) => response.send("pong"))
  return listen(app.listen(0, "127.0.0.1", () => {}))
}

const gbp = (value: number) => ({ type: "monetary", changeAmount: { currencyCode: "GBP", value } })

/** A JSON body of about 70 KB: over the API's 64 KiB limit, under express.json()'s 100 KB. */
const oversize = JSON.stringify({ reason: "x".repeat(70_000), modifications: [gbp(1)] })

/** A body of `text`, sent chunked (no Content-Length). */
const chunked = (text: string): { body: ReadableStream<Uint8Array>; duplex: "half" } => ({
  body: new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text))
      controller.close()
    },
  }),
  duplex: "half",
})

/** The whole walk-through of the API, at `base` + `prefix`. */
const walkThrough = (server: () => { readonly base: string }, prefix: string) => {
  const url = (path: string) => `${prefix}${path}`
  const call = (method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) =>
    request(server().base, method, url(path), init)
  const holder = "/credit/v1/customers/cus_ex/contracts/sub_ex_1"
  const limits = "/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/bg-ex-1"

  const lockKey = async (): Promise<string> => {
    const locked = await call("PUT", `${holder}/_lock`, { headers: admin })
    expect(locked.status, locked.text).toBe(201)
    return (locked.json as { data: { lock: { key: string } } }).data.lock.key
  }

  it("opens a holder with a custom balanceGroupId and reaches it by that id", async () => {
    const opened = await call("PUT", holder, {
      headers: adminJson,
      body: JSON.stringify({ balanceGroupId: "bg-ex-1" }),
    })
    expect(opened.status, opened.text).toBe(201)
    expect(opened.json).toEqual({
      data: { holder: { type: "contract", id: "sub_ex_1" }, balanceGroupId: "bg-ex-1" },
      meta: {},
    })
    const again = await call("PUT", holder, { headers: adminJson, body: JSON.stringify({ balanceGroupId: "bg-ex-1" }) })
    expect(again.status, again.text).toBe(200)
    const byAlias = await call("GET", limits, { headers: admin })
    expect(byAlias.status, byAlias.text).toBe(200)
    expect(byAlias.json).toMatchObject({
      data: { balanceGroupId: "bg-ex-1", holder: { type: "contract", id: "sub_ex_1" } },
    })
  })

  it("locks, modifies with X-Lock-Key and Idempotency-Key (a retry replays), and unlocks", async () => {
    const key = await lockKey()
    const body = JSON.stringify({ reason: "Top-up", modifications: [gbp(2_500)] })
    const headers = { ...adminJson, "x-lock-key": key, "idempotency-key": "top-up-1" }
    const first = await call("PUT", `${holder}/_modify`, { headers, body })
    expect(first.status, first.text).toBe(200)
    const credit = (r: typeof first) =>
      (
        r.json as { data: { current: { credit: Array<{ amount: { currencyCode: string; value: number } }> } } }
      ).data.current.credit.map((c) => c.amount)
    expect(credit(first)).toEqual([{ currencyCode: "GBP", value: 2_500 }])
    const entryId = (first.json as { meta: { entryId: string } }).meta.entryId
    expect(entryId).toMatch(/^[0-9a-f-]{36}$/)

    const retry = await call("PUT", `${holder}/_modify`, { headers, body })
    expect(retry.status, retry.text).toBe(200)
    expect((retry.json as { meta: { entryId: string } }).meta.entryId).toBe(entryId)
    expect(credit(retry)).toEqual([{ currencyCode: "GBP", value: 2_500 }])

    const conflicting = await call("PUT", `${holder}/_modify`, {
      headers,
      body: JSON.stringify({ reason: "Top-up", modifications: [gbp(9)] }),
    })
    expect(conflicting.status, conflicting.text).toBe(409)

    const spent = await call("PUT", `${holder}/_modify`, {
      headers: { ...adminJson, "x-lock-key": key },
      body: JSON.stringify({ reason: "Bill", modifications: [gbp(-1_000)] }),
    })
    expect(spent.status, spent.text).toBe(200)
    expect(credit(spent)).toEqual([{ currencyCode: "GBP", value: 1_500 }])

    const wrongKey = await call("PUT", `${holder}/_unlock`, { headers: adminJson, body: JSON.stringify({ key: "x" }) })
    expect(wrongKey.status, wrongKey.text).toBe(423)
    expect(problemOf(wrongKey.json)?.code).toBe("LOCK_KEY_MISMATCH")
    const unlocked = await call("PUT", `${holder}/_unlock`, { headers: adminJson, body: JSON.stringify({ key }) })
    expect(unlocked.status, unlocked.text).toBe(204)
    const read = await call("GET", holder, { headers: admin })
    expect(read.status).toBe(200)
    expect(credit(read)).toEqual([{ currencyCode: "GBP", value: 1_500 }])
  })

  it("unlocks the customer with a form body and with a JSON body (api-key + api-username)", async () => {
    await lockKey()
    expect((await call("PUT", `${holder}/_lock`, { headers: admin })).status).toBe(423)
    const form = await call("PATCH", "/customer/unlock", {
      headers: { ...track, "content-type": "application/x-www-form-urlencoded" },
      body: "customer_id=cus_ex",
    })
    expect(form.status, form.text).toBe(200)
    expect(form.json).toBe(true)

    await lockKey()
    const json = await call("PATCH", "/customer/unlock", {
      headers: { ...track, "content-type": "application/json" },
      body: JSON.stringify({ subscription_id: "sub_ex_1" }),
    })
    expect(json.status, json.text).toBe(200)
    expect(json.json).toBe(true)
    // Released: the holder can be locked again.
    const key = await lockKey()
    expect((await call("PUT", `${holder}/_unlock`, { headers: adminJson, body: JSON.stringify({ key }) })).status).toBe(
      204,
    )
  })

  it("answers an oversize body with 413, with or without Content-Length, changing nothing", async () => {
    const key = await lockKey()
    const path = url(`${holder}/_modify`)
    const headers = { ...adminJson, "x-lock-key": key }
    const declared = await call("PUT", `${holder}/_modify`, { headers, body: oversize })
    expect(declared.status, declared.text.slice(0, 300)).toBe(413)
    expect(problemOf(declared.json)?.code).toBe("PAYLOAD_TOO_LARGE")
    const streamed = await fetch(`${server().base}${path}`, { method: "PUT", headers, ...chunked(oversize) })
    expect(streamed.status).toBe(413)
    expect(problemOf(await streamed.json())?.code).toBe("PAYLOAD_TOO_LARGE")
    const read = await call("GET", holder, { headers: admin })
    expect(
      (read.json as { data: { current: { credit: Array<{ amount: { value: number } }> } } }).data.current.credit,
    ).toEqual([expect.objectContaining({ amount: { currencyCode: "GBP", value: 1_500 } })])
    expect((await call("PUT", `${holder}/_unlock`, { headers: adminJson, body: JSON.stringify({ key }) })).status).toBe(
      204,
    )
  })

  it("refuses a JSON body nested 100 levels deep with 400", async () => {
    const deep = `{"reason":"deep","modifications":${"[".repeat(99)}${"]".repeat(99)}}`
    const refused = await call("PUT", `${holder}/_modify`, { headers: { ...adminJson, "x-lock-key": "k" }, body: deep })
    expect(refused.status, refused.text).toBe(400)
    expect(problemOf(refused.json)).toEqual({
      status: "400",
      title: "Invalid request body",
      detail: JSON_DEPTH_DETAIL,
      code: "INVALID_REQUEST",
    })
  })

  it("refuses a bad credential with 401", async () => {
    const bearer = await call("GET", holder, { headers: { authorization: "Bearer not-a-known-token" } })
    expect(bearer.status).toBe(401)
    expect(problemOf(bearer.json)?.code).toBe("UNAUTHORIZED")
    const apiKey = await call("PATCH", "/customer/unlock", {
      headers: { "api-key": TRACK.token, "api-username": "someone-else", "content-type": "application/json" },
      body: JSON.stringify({ customer_id: "cus_ex" }),
    })
    expect(apiKey.status).toBe(401)
    expect(problemOf(apiKey.json)?.code).toBe("UNAUTHORIZED")
  })
}

describe("node:http: http.createServer(credit.handler)", () => {
  let credit: CreditHandler
  let server: { readonly base: string; readonly close: () => Promise<void> }
  beforeAll(async () => {
    credit = await mountCredit()
    const listener = createServer(credit.handler)
    listener.listen(0, "127.0.0.1")
    server = await listen(listener)
  })
  afterAll(async () => {
    await server.close()
    await credit.close()
  })

  walkThrough(() => server, "")

  it("answers every path itself: the API's 404 problem outside the API", async () => {
    const r = await request(server.base, "GET", "/app/ping")
    expect(r.status).toBe(404)
    expect(problemOf(r.json)?.code).toBe("ROUTE_NOT_FOUND")
    expect((await request(server.base, "GET", "/healthz")).json).toEqual({ status: "ok" })
  })
})

for (const [name, express, version] of expressVersions) {
  describe(`Express ${version} (${name})`, () => {
    it(`is Express ${name.slice(-1)}`, () => {
      expect(version.split(".")[0]).toBe(name.slice(-1))
    })

    for (const parsers of parserSets) {
      for (const mountPath of ["/", "/billing"]) {
        describe(`body parsers: ${parsers}; mounted at ${mountPath}`, () => {
          const prefix = mountPath === "/" ? "" : mountPath
          let credit: CreditHandler
          let server: { readonly base: string; readonly close: () => Promise<void> }
          beforeAll(async () => {
            credit = await mountCredit()
            server = await expressApp(express, parsers, mountPath, credit)
          })
          afterAll(async () => {
            await server.close()
            await credit.close()
          })

          walkThrough(() => server, prefix)

          it("passes paths outside the API to the app; answers unknown API paths with its 404 problem", async () => {
            const ping = await request(server.base, "GET", "/app/ping")
            expect(ping.status).toBe(200)
            expect(ping.text).toBe("pong")
            const unknown = await request(server.base, "GET", `${prefix}/credit/v1/nowhere`)
            expect(unknown.status).toBe(404)
            expect(problemOf(unknown.json)?.code).toBe("ROUTE_NOT_FOUND")
            const health = await request(server.base, "GET", `${prefix}/healthz`)
            expect(health.json).toEqual({ status: "ok" })
            if (prefix !== "") {
              // Outside the mount path the API is not there: Express answers.
              const outside = await request(server.base, "GET", "/healthz")
              expect(outside.status).toBe(404)
              expect(outside.text).toContain("Cannot GET /healthz")
            }
          })
        })
      }
    }

    describe("other body parsers", () => {
      let credit: CreditHandler
      let server: { readonly base: string; readonly close: () => Promise<void> }
      beforeAll(async () => {
        credit = await mountCredit()
        const app = express()
        app.use("/text", express.text({ type: "*/*" }))
        app.use("/raw", express.raw({ type: "*/*" }))
        app.use("/nested", express.urlencoded({ extended: true }))
        // Reads the stream and keeps nothing.
        app.use("/drained", (req, _res, next) => {
          req.resume()
          req.on("end", () => next())
        })
        for (const path of ["/text", "/raw", "/nested", "/drained"]) app.use(path, credit.handler)
        server = await listen(app.listen(0, "127.0.0.1", () => {}))
      })
      afterAll(async () => {
        await server.close()
        await credit.close()
      })

      it("uses the text of express.text() and the bytes of express.raw()", async () => {
        for (const [prefix, holderId] of [
          ["/text", "sub_text"],
          ["/raw", "sub_raw"],
        ] as const) {
          const opened = await request(
            server.base,
            "PUT",
            `${prefix}/credit/v1/customers/cus_p/contracts/${holderId}`,
            {
              headers: adminJson,
              body: JSON.stringify({ balanceGroupId: `bg-${holderId}` }),
            },
          )
          expect(opened.status, opened.text).toBe(201)
          expect(opened.json).toMatchObject({ data: { balanceGroupId: `bg-${holderId}` } })
          // A media type the API does not take stays refused, as without a parser.
          const plain = await request(server.base, "PUT", `${prefix}/credit/v1/customers/cus_p/contracts/x`, {
            headers: { ...admin, "content-type": "text/plain" },
            body: "{}",
          })
          expect(plain.status).toBe(415)
          expect(problemOf(plain.json)?.code).toBe("UNSUPPORTED_MEDIA_TYPE")
        }
      })

      it("refuses a form parsed into nested values with 400 naming the cause; flat forms still work", async () => {
        const nested = await request(server.base, "PATCH", "/nested/customer/unlock", {
          headers: { ...track, "content-type": "application/x-www-form-urlencoded" },
          body: "customer_id[a]=cus_p",
        })
        expect(nested.status, nested.text).toBe(400)
        expect(problemOf(nested.json)?.detail).toContain("express.urlencoded({ extended: false })")
        await request(server.base, "PUT", "/nested/credit/v1/customers/cus_p/contracts/sub_n", { headers: admin })
        expect(
          (
            await request(server.base, "PUT", "/nested/credit/v1/customers/cus_p/contracts/sub_n/_lock", {
              headers: admin,
            })
          ).status,
        ).toBe(201)
        const flat = await request(server.base, "PATCH", "/nested/customer/unlock", {
          headers: { ...track, "content-type": "application/x-www-form-urlencoded" },
          body: "subscription_id=sub_n",
        })
        expect(flat.status, flat.text).toBe(200)
        expect(flat.json).toBe(true)
      })

      it("refuses a body read by middleware that kept nothing, naming the cause and the fix", async () => {
        const r = await request(server.base, "PUT", "/drained/credit/v1/customers/cus_p/contracts/sub_d", {
          headers: adminJson,
          body: JSON.stringify({ balanceGroupId: "bg-d" }),
        })
        expect(r.status).toBe(500)
        const problem = problemOf(r.json)
        expect(problem?.code).toBe("INTERNAL_ERROR")
        expect(problem?.detail).toContain("mount the credit API before that middleware")
        // Nothing was opened.
        const read = await request(server.base, "GET", "/text/credit/v1/customers/cus_p/contracts/sub_d", {
          headers: admin,
        })
        expect(read.status).toBe(404)
      })
    })
  })
}

describe("createCreditHandler", () => {
  it("claims every route of the API, and nothing else", () => {
    const paths: Array<string> = []
    HttpApi.reflect(CreditLockApi, {
      onGroup: () => {},
      onEndpoint: ({ endpoint }) => paths.push(endpoint.path.replace(/:\w+/g, "x")),
    })
    expect(paths).toEqual(
      expect.arrayContaining(["/customer/unlock", "/healthz", "/credit/v1/customers/x/x/x/_modify"]),
    )
    for (const path of [...paths, "/openapi.json", "/docs"]) expect(isCreditApiPath(path), path).toBe(true)
    for (const path of [
      "/",
      "/app",
      "/credit",
      "/credit/v2/x",
      "/customer",
      "/customers/unlock",
      "/bcwsx",
      "/healthzz",
    ]) {
      expect(isCreditApiPath(path), path).toBe(false)
    }
    expect(isCreditApiPath("/healthz?probe=1")).toBe(true)
  })

  const rejection = async (options: Parameters<typeof createCreditHandler>[0]): Promise<CreditError> => {
    const error: unknown = await createCreditHandler(options).then(
      () => undefined,
      (e: unknown) => e,
    )
    if (!(error instanceof CreditError)) throw new Error(`expected a CreditError, got ${String(error)}`)
    return error
  }

  it("rejects invalid credentials with a CreditError naming the position and field, never the token", async () => {
    const storage = MemoryStorage.layer()
    const cases: ReadonlyArray<readonly [credentials: ReadonlyArray<unknown>, expected: string]> = [
      [[], "credentials must be a non-empty array"],
      [[{ token: "secret-1 with space", customers: ["*"] }], "credentials[0].token"],
      [[ADMIN, { token: "secret-2", customers: [] }], "credentials[1].customers"],
      [[{ token: "secret-3", username: "", customers: ["*"] }], "credentials[0].username"],
      [[{ token: "secret-4", customers: ["*"], customer: "c" }], "credentials[0] has unknown fields: customer"],
      [
        [
          { token: "secret-5", customers: ["*"] },
          { token: "secret-5", customers: ["c"] },
        ],
        "credentials[1] repeats credentials[0]",
      ],
    ]
    for (const [credentials, expected] of cases) {
      const error = await rejection({ storage, credentials: credentials as ReadonlyArray<typeof ADMIN> })
      expect(error.status).toBe(400)
      expect(error.code).toBe("INVALID_REQUEST")
      expect(error.message).toContain(expected)
      expect(error.message).not.toMatch(/secret-\d/)
    }
  })

  it("rejects invalid engine settings and options with a CreditError naming them", async () => {
    const storage = MemoryStorage.layer()
    const engine = await rejection({ storage, credentials: [ADMIN], engine: { lockTtl: -5 } })
    expect(engine.status).toBe(400)
    expect(engine.detail).toContain("lockTtl")
    const body = await rejection({ storage, credentials: [ADMIN], maxBodyBytes: 0 })
    expect(body.detail).toBe("maxBodyBytes: must be a positive integer")
    const rate = await rejection({ storage, credentials: [ADMIN], rateLimit: { limit: 0, window: "1 minute" } })
    expect(rate.detail).toContain("rateLimit")
    const unknown = await rejection({ storage, credentials: [ADMIN], ...{ credential: [] } })
    expect(unknown.detail).toBe("options: unknown option credential")
  })

  it("applies maxBodyBytes and rateLimit; answers 503 once closed", async () => {
    const credit = await createCreditHandler({
      storage: MemoryStorage.layer(),
      credentials: [ADMIN],
      maxBodyBytes: 100,
      rateLimit: { limit: 2, window: "1 hour" },
      logRequests: false,
    })
    const listener = createServer(credit.handler)
    listener.listen(0, "127.0.0.1")
    const server = await listen(listener)
    try {
      const path = "/credit/v1/customers/cus_o/contracts/sub_o"
      const big = await request(server.base, "PUT", path, {
        headers: adminJson,
        body: JSON.stringify({ pad: "x".repeat(100) }),
      })
      expect(big.status).toBe(413)
      expect((await request(server.base, "PUT", path, { headers: adminJson, body: "{}" })).status).toBe(201)
      expect((await request(server.base, "GET", path, { headers: admin })).status).toBe(200)
      const limited = await request(server.base, "GET", path, { headers: admin })
      expect(limited.status).toBe(429)
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0)
      await credit.close()
      const closed = await request(server.base, "GET", "/healthz")
      expect(closed.status).toBe(503)
      expect(problemOf(closed.json)?.detail).toBe("the credit API has been closed")
    } finally {
      await server.close()
      await credit.close()
    }
  })
})
