/**
 * `/openapi.json` checked against the structural rules of OpenAPI 3.x (the document's shape,
 * operations, parameters, responses, security, and that every `$ref` resolves), and against the
 * routes DESIGN promises.
 */
import * as Http from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { MemoryStorage } from "@creditlock/memory"
import { OpenApi } from "@effect/platform"
import { Duration } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CreditLockApi } from "../src/Api.js"
import { addressBucket } from "../src/Auth.js"
import { createCreditHandler } from "../src/index.js"
import { ADMIN, type Harness, problemOf, request, startServer } from "./harness.js"

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const isObject = (u: unknown): u is Record<string, Json> => typeof u === "object" && u !== null && !Array.isArray(u)

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const
const parameterLocations = ["query", "header", "path", "cookie"]
const schemaTypes = ["null", "boolean", "object", "array", "number", "string", "integer"]

/** Every structural violation of OpenAPI 3.x found in `doc` (an empty list when it is valid). */
const openApiProblems = (doc: unknown): Array<string> => {
  const problems: Array<string> = []
  const fail = (where: string, what: string): void => {
    problems.push(`${where}: ${what}`)
  }
  if (!isObject(doc)) return ["document: not an object"]
  if (typeof doc.openapi !== "string" || !/^3\.[01]\.\d+$/.test(doc.openapi)) fail("openapi", "must be 3.0.x or 3.1.x")
  const info = doc.info
  if (!isObject(info)) fail("info", "missing")
  else {
    if (typeof info.title !== "string" || info.title === "") fail("info.title", "must be a non-empty string")
    if (typeof info.version !== "string" || info.version === "") fail("info.version", "must be a non-empty string")
  }
  if (!isObject(doc.paths)) fail("paths", "must be an object")
  const components = isObject(doc.components) ? doc.components : {}
  const schemes = isObject(components.securitySchemes) ? components.securitySchemes : {}

  // Every $ref resolves to something in the document.
  const resolve = (ref: string): unknown => {
    if (!ref.startsWith("#/")) return undefined
    let node: unknown = doc
    for (const part of ref.slice(2).split("/")) {
      const key = part.replace(/~1/g, "/").replace(/~0/g, "~")
      node = isObject(node) ? node[key] : undefined
    }
    return node
  }
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) walk(item, `${where}[${i}]`)
    } else if (isObject(node)) {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$ref") {
          if (typeof value !== "string" || resolve(value) === undefined) fail(where, `unresolved $ref ${String(value)}`)
        } else walk(value, `${where}.${key}`)
      }
    }
  }
  walk(doc, "#")

  // Schemas use known types only.
  const checkSchema = (schema: unknown, where: string): void => {
    if (!isObject(schema)) {
      fail(where, "schema must be an object")
      return
    }
    const type = schema.type
    const types = Array.isArray(type) ? type : type === undefined ? [] : [type]
    for (const t of types)
      if (typeof t !== "string" || !schemaTypes.includes(t)) fail(where, `unknown type ${String(t)}`)
    if (schema.required !== undefined && !Array.isArray(schema.required)) fail(where, "required must be an array")
    if (isObject(schema.properties)) {
      for (const [name, sub] of Object.entries(schema.properties)) checkSchema(sub, `${where}.properties.${name}`)
    }
    if (schema.items !== undefined && !Array.isArray(schema.items)) checkSchema(schema.items, `${where}.items`)
    for (const key of ["anyOf", "oneOf", "allOf"]) {
      const list = schema[key]
      if (list !== undefined) {
        if (!Array.isArray(list) || list.length === 0) fail(where, `${key} must be a non-empty array`)
        else for (const [i, sub] of list.entries()) checkSchema(sub, `${where}.${key}[${i}]`)
      }
    }
  }
  if (isObject(components.schemas)) {
    for (const [name, schema] of Object.entries(components.schemas)) checkSchema(schema, `components.schemas.${name}`)
  }
  for (const [name, scheme] of Object.entries(schemes)) {
    if (
      !isObject(scheme) ||
      !["apiKey", "http", "oauth2", "openIdConnect", "mutualTLS"].includes(String(scheme.type))
    ) {
      fail(`components.securitySchemes.${name}`, "invalid type")
    } else if (
      scheme.type === "apiKey" &&
      (typeof scheme.name !== "string" || !["query", "header", "cookie"].includes(String(scheme.in)))
    ) {
      fail(`components.securitySchemes.${name}`, "apiKey needs name and in")
    } else if (scheme.type === "http" && typeof scheme.scheme !== "string") {
      fail(`components.securitySchemes.${name}`, "http needs scheme")
    }
  }
  const checkSecurity = (security: unknown, where: string) => {
    if (security === undefined) return
    if (!Array.isArray(security)) {
      fail(where, "security must be an array")
      return
    }
    for (const requirement of security) {
      if (!isObject(requirement)) fail(where, "a security requirement must be an object")
      else
        for (const name of Object.keys(requirement))
          if (!(name in schemes)) fail(where, `unknown security scheme ${name}`)
    }
  }
  checkSecurity(doc.security, "security")

  const operationIds = new Set<string>()
  for (const [path, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
    if (!path.startsWith("/")) fail(path, "path must start with /")
    if (!isObject(item)) {
      fail(path, "path item must be an object")
      continue
    }
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? "")
    for (const method of methods) {
      const op = item[method]
      if (op === undefined) continue
      const where = `${method.toUpperCase()} ${path}`
      if (!isObject(op)) {
        fail(where, "operation must be an object")
        continue
      }
      if (typeof op.operationId === "string") {
        if (operationIds.has(op.operationId)) fail(where, `duplicate operationId ${op.operationId}`)
        operationIds.add(op.operationId)
      }
      const parameters = Array.isArray(op.parameters) ? op.parameters : []
      const seen = new Set<string>()
      for (const parameter of parameters) {
        if (
          !isObject(parameter) ||
          typeof parameter.name !== "string" ||
          !parameterLocations.includes(String(parameter.in))
        ) {
          fail(where, "parameter needs name and a valid in")
          continue
        }
        const key = `${parameter.in}:${parameter.name}`
        if (seen.has(key)) fail(where, `duplicate parameter ${key}`)
        seen.add(key)
        if (parameter.in === "path" && parameter.required !== true)
          fail(where, `path parameter ${parameter.name} must be required`)
        if (parameter.schema !== undefined) checkSchema(parameter.schema, `${where} parameter ${parameter.name}`)
      }
      for (const name of templated)
        if (!seen.has(`path:${name}`)) fail(where, `path parameter {${name}} is not declared`)
      for (const key of seen) {
        if (key.startsWith("path:") && !templated.includes(key.slice(5))) fail(where, `${key} is not in the path`)
      }
      if (op.requestBody !== undefined) {
        const content = isObject(op.requestBody) ? op.requestBody.content : undefined
        if (!isObject(content) || Object.keys(content).length === 0) fail(where, "requestBody needs content")
      }
      if (!isObject(op.responses) || Object.keys(op.responses).length === 0) fail(where, "needs responses")
      else {
        for (const [status, response] of Object.entries(op.responses)) {
          if (!/^([1-5](\d\d|XX)|default)$/.test(status)) fail(where, `invalid response key ${status}`)
          if (!isObject(response) || typeof response.description !== "string")
            fail(`${where} ${status}`, "needs a description")
          else if (response.content !== undefined) {
            if (!isObject(response.content)) fail(`${where} ${status}`, "content must be an object")
            else
              for (const [type, media] of Object.entries(response.content)) {
                if (!/^[\w.+-]+\/[\w.+*-]+$/.test(type)) fail(`${where} ${status}`, `invalid media type ${type}`)
                if (isObject(media) && media.schema !== undefined)
                  checkSchema(media.schema, `${where} ${status} ${type}`)
              }
          }
        }
      }
      checkSecurity(op.security, where)
    }
  }
  return problems
}

let h: Harness
let spec: Record<string, Json>
beforeAll(async () => {
  h = await startServer()
  spec = (await request(h.base, "GET", "/openapi.json")).json as Record<string, Json>
})
afterAll(async () => {
  await h.close()
})

describe("/openapi.json", () => {
  it("is a structurally valid OpenAPI 3.x document, generated from the API definition", () => {
    expect(openApiProblems(spec)).toEqual([])
    expect(spec).toEqual({
      ...JSON.parse(JSON.stringify(OpenApi.fromApi(CreditLockApi))),
      servers: [{ url: h.base }],
    })
  })

  it("the structural check catches broken documents", () => {
    const broken = JSON.parse(JSON.stringify(spec)) as {
      openapi: string
      paths: Record<string, Record<string, Record<string, unknown>>>
    }
    broken.openapi = "2.0"
    const lock = broken.paths["/credit/v1/customers/{customerId}/{holderType}/{holderId}/_lock"]?.put ?? {}
    lock.parameters = []
    lock.responses = { "201": { content: { "application/json": { schema: { $ref: "#/components/schemas/Nope" } } } } }
    const problems = openApiProblems(broken)
    expect(problems.some((p) => p.startsWith("openapi"))).toBe(true)
    expect(problems.some((p) => p.includes("{customerId} is not declared"))).toBe(true)
    expect(problems.some((p) => p.includes("needs a description"))).toBe(true)
    expect(problems.some((p) => p.includes("unresolved $ref"))).toBe(true)
  })

  it("documents every route with its method and success status", () => {
    const paths = spec.paths as Record<
      string,
      Record<string, { responses: Record<string, unknown>; security?: unknown }>
    >
    const holder = "/credit/v1/customers/{customerId}/{holderType}/{holderId}"
    const limits = "/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/{id}"
    const expected: Array<[string, string, string]> = [
      [holder, "get", "200"],
      [holder, "put", "201"],
      [holder, "put", "200"],
      [`${holder}/_lock`, "put", "201"],
      [`${holder}/_modify`, "put", "200"],
      [`${holder}/_unlock`, "put", "204"],
      [`${holder}/journal`, "get", "200"],
      ["/customer/unlock", "patch", "200"],
      [limits, "post", "201"],
      [limits, "get", "200"],
      ["/healthz", "get", "200"],
    ]
    for (const [path, method, status] of expected) {
      expect(paths[path]?.[method]?.responses[status], `${method} ${path} ${status}`).toBeDefined()
    }
    const lock = paths[`${holder}/_lock`]?.put
    for (const status of ["400", "401", "403", "404", "423", "429", "503", "500"])
      expect(lock?.responses[status]).toBeDefined()
    expect(lock?.security).toEqual([{ bearer: [] }, { apiKey: [], apiUsername: [] }])
    expect(paths["/healthz"]?.get?.security).toEqual([])
    const unlock = (
      spec.paths as Record<string, Record<string, { requestBody: { content: Record<string, unknown> } }>>
    )["/customer/unlock"]?.patch
    expect(Object.keys(unlock?.requestBody.content ?? {}).sort()).toEqual([
      "application/json",
      "application/x-www-form-urlencoded",
    ])
  })

  it("recommends Idempotency-Key on _modify, and says retries after 503 OUTCOME_UNKNOWN must reuse it", () => {
    const modify = (
      spec.paths as Record<
        string,
        Record<string, { description: string; parameters: Array<{ name: string; in: string; description?: string }> }>
      >
    )["/credit/v1/customers/{customerId}/{holderType}/{holderId}/_modify"]?.put
    const header = modify?.parameters.find((p) => p.in === "header" && p.name === "idempotency-key")
    expect(header?.description).toMatch(/^Recommended\./)
    expect(header?.description).toContain("503 OUTCOME_UNKNOWN must reuse the same key")
    expect(modify?.description).toContain("Send an Idempotency-Key (recommended)")
    expect(modify?.description).toContain("retry with the same Idempotency-Key")
  })

  it("declares Retry-After on every 423, 429 and 503, X-Request-Id on every response, and the request headers", () => {
    type Op = {
      parameters?: Array<{ name: string; in: string }>
      responses: Record<string, { headers?: Record<string, { schema?: { type?: string } }> }>
    }
    const paths = spec.paths as Record<string, Record<string, Op>>
    let retryable = 0
    for (const [path, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          expect(response.headers?.["X-Request-Id"], `${method} ${path} ${status}`).toBeDefined()
          if (status === "423" || status === "429" || status === "503") {
            retryable++
            expect(response.headers?.["Retry-After"]?.schema?.type, `${method} ${path} ${status}`).toBe("integer")
          } else {
            expect(response.headers?.["Retry-After"], `${method} ${path} ${status}`).toBeUndefined()
          }
        }
      }
    }
    expect(retryable).toBeGreaterThan(10)
    const holder = "/credit/v1/customers/{customerId}/{holderType}/{holderId}"
    const headersOf = (path: string) =>
      (paths[path]?.put?.parameters ?? []).filter((p) => p.in === "header").map((p) => p.name)
    expect(headersOf(`${holder}/_lock`)).toContain("idempotency-key")
    expect(headersOf(`${holder}/_modify`)).toEqual(expect.arrayContaining(["idempotency-key", "x-lock-key"]))
  })

  it("declares 503 OUTCOME_UNKNOWN on every write route, UNLOCK_INCOMPLETE on the customer unlock", () => {
    const paths = spec.paths as Record<string, Record<string, { responses: Record<string, Json> }>>
    const codesOf = (path: string, method: string) => {
      const text = JSON.stringify(paths[path]?.[method]?.responses["503"] ?? null)
      return [...text.matchAll(/#\/components\/schemas\/(\w+)Problem/g)].map((m) => m[1])
    }
    const holder = "/credit/v1/customers/{customerId}/{holderType}/{holderId}"
    const limits = "/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/{id}"
    const writes: Array<[string, string]> = [
      [holder, "put"],
      [`${holder}/_lock`, "put"],
      [`${holder}/_modify`, "put"],
      [`${holder}/_unlock`, "put"],
      ["/customer/unlock", "patch"],
      [limits, "post"],
    ]
    for (const [path, method] of writes) {
      expect(codesOf(path, method), `${method} ${path}`).toEqual(
        expect.arrayContaining(["StorageUnavailable", "OutcomeUnknown"]),
      )
      expect(paths[path]?.[method]?.responses["503"]).toMatchObject({
        description: expect.stringContaining("OUTCOME_UNKNOWN"),
      })
    }
    expect(codesOf("/customer/unlock", "patch")).toContain("UnlockIncomplete")
    for (const [path, method] of [
      [holder, "get"],
      [`${holder}/journal`, "get"],
      [limits, "get"],
    ] as const) {
      expect(codesOf(path, method), `${method} ${path}`).toEqual(["StorageUnavailable"])
    }
    const schemas = (spec.components as { schemas: Record<string, Json> }).schemas
    expect(JSON.stringify(schemas.OutcomeUnknownProblem)).toContain('"entryId"')
    for (const member of ['"customerId"', '"released"', '"pending"']) {
      expect(JSON.stringify(schemas.UnlockIncompleteProblem)).toContain(member)
    }
  })

  it("describes the balance group of an opened holder as nullable, and only an administrator may set one", () => {
    const schemas = (spec.components as { schemas: Record<string, Json> }).schemas
    expect(JSON.stringify(schemas.HolderOpenedBody)).toContain('{"type":"null"}')
    const put = (spec.paths as Record<string, Record<string, { description: string }>>)[
      "/credit/v1/customers/{customerId}/{holderType}/{holderId}"
    ]?.put
    expect(put?.description).toContain("only an administrator credential may send one")
  })

  it("describes errors with the problem body", () => {
    const schemas = (spec.components as { schemas: Record<string, { properties?: Record<string, unknown> }> }).schemas
    const problem = schemas.LockKeyMismatchProblem
    expect(problem?.properties).toHaveProperty("error")
    expect(JSON.stringify(problem)).toContain("LOCK_KEY_MISMATCH")
  })
})

/** A GET with any headers (Host included), the body as text. */
const get = (
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Http.IncomingHttpHeaders; text: string }> =>
  new Promise((resolve, reject) => {
    const req = Http.request(`${base}${path}`, { headers }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        text += chunk
      })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on("error", reject)
    req.end()
  })

/** The `servers` of the document embedded in the Swagger UI page. */
const pageServers = (html: string): unknown => {
  const start = html.indexOf('<script id="swagger-spec" type="application/json">')
  const end = html.indexOf("</script>", start)
  return (JSON.parse(html.slice(html.indexOf(">", start) + 1, end)) as { servers?: unknown }).servers
}

describe("servers", () => {
  it("are derived from the request: scheme, Host and mount path; each variant has its own ETag", async () => {
    const port = new URL(h.base).port
    const plain = await get(h.base, "/openapi.json")
    expect(JSON.parse(plain.text).servers).toEqual([{ url: h.base }])
    expect(plain.headers.vary).toBe("accept-encoding, x-forwarded-proto")
    const proxied = await get(h.base, "/openapi.json", { host: `Credit.Example:${port}`, "x-forwarded-proto": "https" })
    expect(JSON.parse(proxied.text).servers).toEqual([{ url: `https://credit.example:${port}` }])
    expect(proxied.headers.etag).not.toBe(plain.headers.etag)
    // An ETag answers 304 only for the document it tags.
    expect((await get(h.base, "/openapi.json", { "if-none-match": plain.headers.etag ?? "" })).status).toBe(304)
    const other = {
      host: `credit.example:${port}`,
      "x-forwarded-proto": "https",
      "if-none-match": plain.headers.etag ?? "",
    }
    expect((await get(h.base, "/openapi.json", other)).status).toBe(200)
    // A Host that is not a host name gives a relative URL rather than echoing it.
    const odd = await get(h.base, "/openapi.json", { host: "a<b>:1" })
    expect(JSON.parse(odd.text).servers).toEqual([{ url: "/" }])
    // The page's embedded document names the mount path, which Swagger UI resolves against the page.
    const docs = await get(h.base, "/docs", { host: "elsewhere.example" })
    expect(docs.status).toBe(200)
    expect(pageServers(docs.text)).toEqual([{ url: "/" }])
    expect(docs.text).toContain("swagger-ui")
  })

  it("name the mount path of an API mounted in Express", async () => {
    const express = createRequire(import.meta.url)("express5") as () => {
      use(path: string, handler: Http.RequestListener): void
      listen(port: number, host: string): Http.Server
    }
    const credit = await createCreditHandler({
      storage: MemoryStorage.layer(),
      credentials: [{ token: ADMIN.token, customers: ["*"] }],
      logRequests: false,
    })
    const app = express()
    app.use("/billing", credit.handler)
    const server = app.listen(0, "127.0.0.1")
    await new Promise((resolve) => server.once("listening", resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const spec = await get(base, "/billing/openapi.json")
      expect(JSON.parse(spec.text).servers).toEqual([{ url: `${base}/billing` }])
      expect(pageServers((await get(base, "/billing/docs")).text)).toEqual([{ url: "/billing" }])
    } finally {
      await new Promise((resolve) => server.close(resolve))
      await credit.close()
    }
  })

  it("are the configured public URL when there is one, in both documents", async () => {
    const configured = await startServer({ publicUrl: "https://credit.example.com/api/" })
    try {
      const spec = await get(configured.base, "/openapi.json", { "x-forwarded-proto": "https" })
      expect(JSON.parse(spec.text).servers).toEqual([{ url: "https://credit.example.com/api" }])
      expect(spec.headers.vary).toBe("accept-encoding")
      expect(pageServers((await get(configured.base, "/docs")).text)).toEqual([
        { url: "https://credit.example.com/api" },
      ])
    } finally {
      await configured.close()
    }
    await expect(
      createCreditHandler({
        storage: MemoryStorage.layer(),
        credentials: [{ token: ADMIN.token, customers: ["*"] }],
        publicUrl: "ftp://credit.example.com",
      }),
    ).rejects.toMatchObject({ status: 400, detail: expect.stringContaining("publicUrl") })
  })
})

describe("rate limit of the documents", () => {
  it("keys an anonymous caller by its IPv4 address, or its IPv6 /64 network", () => {
    expect(addressBucket("203.0.113.7")).toBe("203.0.113.7")
    expect(addressBucket("::ffff:203.0.113.7")).toBe("203.0.113.7")
    expect(addressBucket("2001:db8:0:1:aaaa::1")).toBe("2001:db8:0:1::/64")
    expect(addressBucket("2001:DB8:0:1:bbbb:cccc:dddd:eeee")).toBe("2001:db8:0:1::/64")
    expect(addressBucket("2001:db8::1")).toBe("2001:db8:0:0::/64")
    expect(addressBucket("::1")).toBe("0:0:0:0::/64")
    expect(addressBucket("fe80::1%eth0")).toBe("fe80:0:0:0::/64")
  })

  it("counts anonymous callers by address and credentials by credential: 429 with Retry-After beyond it", async () => {
    const limited = await startServer({ rateLimit: { limit: 3, window: Duration.minutes(1) } })
    try {
      expect((await get(limited.base, "/docs")).status).toBe(200)
      expect((await get(limited.base, "/openapi.json")).status).toBe(200)
      expect((await get(limited.base, "/openapi.json")).status).toBe(200)
      for (const path of ["/docs", "/openapi.json"]) {
        const refused = await get(limited.base, path)
        expect(refused.status, path).toBe(429)
        expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1)
        expect(problemOf(JSON.parse(refused.text))?.code).toBe("RATE_LIMITED")
        expect(problemOf(JSON.parse(refused.text))?.detail).toContain("this address")
      }
      // A credential has a bucket of its own, which the API's routes share.
      const bearer = { authorization: `Bearer ${ADMIN.token}` }
      expect((await get(limited.base, "/openapi.json", bearer)).status).toBe(200)
      expect((await get(limited.base, "/credit/v1/customers/c/contracts/nothing", bearer)).status).toBe(404)
      expect((await get(limited.base, "/docs", bearer)).status).toBe(200)
      const spent = await get(limited.base, "/docs", bearer)
      expect(spent.status).toBe(429)
      expect(problemOf(JSON.parse(spent.text))?.detail).toContain("this credential")
      // Health is not a document: it stays outside the limit.
      expect((await get(limited.base, "/healthz")).status).toBe(200)
    } finally {
      await limited.close()
    }
  })
})
