import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { MemoryStorage } from "@creditlock/memory"
import { Effect, Exit, Layer, Redacted, Scope, Tracer } from "effect"
import { describe, expect, it } from "vitest"
import * as Server from "../src/Server.js"
import { ADMIN, problemOf, request } from "./harness.js"

const options = {
  storage: MemoryStorage.layer(),
  credentials: [{ token: Redacted.make(ADMIN.token), customers: ["*"] }],
  logRequests: false,
}
const auth = { authorization: `Bearer ${ADMIN.token}`, "content-type": "application/json" }
const longId = "€".repeat(128)

describe("web handler", () => {
  it("serves the API as Request → Response, with the same guard", async () => {
    const { handler, dispose } = Server.toWebHandler(options)
    try {
      const call = (method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) =>
        handler(new Request(`http://mounted.test${path}`, { method, ...init }))
      expect(await (await call("GET", "/healthz")).json()).toEqual({ status: "ok" })
      const holder = `/credit/v1/customers/cus_web/customers/${encodeURIComponent(longId)}`
      expect((await call("PUT", holder, { headers: auth })).status).toBe(201)
      const locked = await call("PUT", `${holder}/_lock`, { headers: auth })
      expect(locked.status).toBe(201)
      const invalid = await call("PUT", `${holder}/_unlock`, { headers: auth, body: "{" })
      expect(invalid.status).toBe(400)
      expect(problemOf(await invalid.json())?.code).toBe("INVALID_REQUEST")
      const big = await call("PUT", `${holder}/_unlock`, { headers: auth, body: "x".repeat(70_000) })
      expect(big.status).toBe(413)
      expect((await call("GET", "/docs")).status).toBe(200)
      expect((await call("GET", "/nowhere")).status).toBe(404)
    } finally {
      await dispose()
    }
  })
})

describe("tracing when mounted", () => {
  it("records the headers that carry secrets as <redacted>, and the route template", async () => {
    const recorded: Array<Map<string, unknown>> = []
    let ids = 0
    const tracer = Tracer.make({
      span: (name, parent, context, links, startTime, kind) => {
        const attributes = new Map<string, unknown>()
        if (kind === "server") recorded.push(attributes)
        const span: Tracer.Span = {
          _tag: "Span",
          name,
          spanId: `span-${++ids}`,
          traceId: "trace",
          parent,
          context,
          status: { _tag: "Started", startTime },
          attributes,
          links,
          sampled: true,
          kind,
          end: () => {},
          attribute: (key, value) => {
            attributes.set(key, value)
          },
          event: () => {},
          addLinks: () => {},
        }
        return span
      },
      context: (f) => f(),
    })
    const { handler, dispose } = Server.toWebHandler({
      ...options,
      storage: Layer.merge(MemoryStorage.layer(), Layer.setTracer(tracer)),
    })
    try {
      const holder = "/credit/v1/customers/cus_traced/contracts/sub_1"
      await handler(new Request(`http://mounted.test${holder}`, { method: "PUT", headers: auth }))
      await handler(
        new Request(`http://mounted.test${holder}/_modify`, {
          method: "PUT",
          headers: {
            ...auth,
            "x-lock-key": "secret-lock-key-1",
            "idempotency-key": "secret-reference-1",
            "api-key": "k",
          },
          body: "{}",
        }),
      )
      const modify = recorded.at(-1)
      expect(modify?.get("http.route")).toBe("/credit/v1/customers/:customerId/:holderType/:holderId/_modify")
      for (const name of ["authorization", "x-lock-key", "idempotency-key", "api-key"]) {
        expect(String(modify?.get(`http.request.header.${name}`)), name).toBe("<redacted>")
      }
    } finally {
      await dispose()
    }
  })
})

describe("node:http handler", () => {
  const serve = async (handler: Server.NodeHandler) => {
    const server = createServer(handler)
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return {
      base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    }
  }

  it("serves the API from an existing server (Promise form)", async () => {
    const mounted = await Server.toNodeHandler(options)
    const { base, close } = await serve(mounted.handler)
    try {
      const holder = `/credit/v1/customers/cus_node/contracts/${encodeURIComponent(longId)}`
      expect((await request(base, "PUT", holder, { headers: auth })).status).toBe(201)
      expect((await request(base, "GET", holder, { headers: auth })).json).toMatchObject({
        data: { holder: { type: "contract", id: longId } },
      })
      expect((await request(base, "GET", holder)).status).toBe(401)
    } finally {
      await close()
      await mounted.dispose()
    }
  })

  it("serves the API within a scope (Effect form)", async () => {
    const scope = Effect.runSync(Scope.make())
    const handler = await Effect.runPromise(Scope.extend(Server.makeNodeHandler(options), scope))
    const { base, close } = await serve(handler)
    try {
      expect((await request(base, "GET", "/healthz")).json).toEqual({ status: "ok" })
      expect((await request(base, "PUT", "/credit/v1/customers/c/contracts/s", { headers: auth })).status).toBe(201)
    } finally {
      await close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
