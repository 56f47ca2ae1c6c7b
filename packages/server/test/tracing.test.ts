/**
 * Tracing for real: a local OTLP/HTTP receiver, the `creditlock` executable exporting to it (one
 * request span per request, the engine's spans as its children, flushed on SIGTERM), and nothing
 * secret in anything it received; and nothing at all when tracing is not configured.
 */
import type { ChildProcess } from "node:child_process"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { HttpServer } from "@effect/platform"
import { ConfigProvider, Effect, Layer, Logger, ManagedRuntime, Option } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { config, layer } from "../src/Main.js"
import { tracesUrl } from "../src/Tracing.js"
import { holderPath, request, startBin } from "./harness.js"

const TOKEN = "tracing-test-admin-token-5e1f"
const REASON = "tracing-test-reason-text-77aa"
const LOCK_REFERENCE = "tracing-lock-idempotency-3b9c"
const MODIFY_REFERENCE = "tracing-modify-idempotency-8d20"

const children: Array<ChildProcess> = []
const receivers: Array<Server> = []
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await Promise.all(receivers.map((r) => new Promise((resolve) => r.close(resolve))))
})

/** An OTLP/HTTP receiver on a free loopback port: every body posted to /v1/traces, as text. */
const receiver = async (): Promise<{ readonly endpoint: string; readonly bodies: Array<string> }> => {
  const bodies: Array<string> = []
  const server = createServer((req, res) => {
    let text = ""
    req.setEncoding("utf8")
    req.on("data", (chunk: string) => {
      text += chunk
    })
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces" && req.headers["content-type"] === "application/json") {
        bodies.push(text)
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      } else {
        bodies.push(`unexpected ${req.method} ${req.url} ${req.headers["content-type"]}`)
        res.writeHead(404).end()
      }
    })
  })
  receivers.push(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies }
}

const startTraced = (env: Record<string, string>) => startBin(TOKEN, env, children)

type Attribute = { readonly key: string; readonly value: Record<string, unknown> }
interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<Attribute>
}
interface OtlpBody {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<Attribute> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }>
  }>
}

const attribute = (attributes: ReadonlyArray<Attribute>, key: string): unknown => {
  const value = attributes.find((a) => a.key === key)?.value
  return value === undefined ? undefined : Object.values(value)[0]
}

/** OTLP span kind SERVER. */
const SERVER = 2

describe("tracing", () => {
  it("exports a span per request with the engine's spans as its children, flushed on SIGTERM, with no secret", async () => {
    const { endpoint, bodies } = await receiver()
    const { api, child, output } = await startTraced({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: "creditlock-tracing-test",
      // No periodic export during the test: whatever arrives was sent on stopping.
      OTEL_BSP_SCHEDULE_DELAY: "600000",
    })
    expect(output()).toContain(`"traces":"${endpoint}/v1/traces (service creditlock-tracing-test)"`)
    const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }
    const path = holderPath({ customerId: "cus_trace", holderType: "contracts", holderId: "sub_trace" })
    expect((await request(api, "PUT", path, { headers: auth })).status).toBe(201)
    const locked = await request(api, "PUT", `${path}/_lock`, {
      headers: { ...auth, "idempotency-key": LOCK_REFERENCE },
    })
    expect(locked.status).toBe(201)
    const key = (locked.json as { data: { lock: { key: string } } }).data.lock.key
    const modified = await request(api, "PUT", `${path}/_modify`, {
      headers: { ...auth, "x-lock-key": key, "idempotency-key": MODIFY_REFERENCE },
      body: JSON.stringify({
        reason: REASON,
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 1234 } }],
      }),
    })
    expect(modified.status).toBe(200)
    expect(
      (await request(api, "PUT", `${path}/_unlock`, { headers: auth, body: JSON.stringify({ key }) })).status,
    ).toBe(204)
    expect(bodies).toEqual([])
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    child.kill("SIGTERM")
    expect(await exited, output()).toBe(0)

    expect(bodies.length, output()).toBeGreaterThan(0)
    const raw = bodies.join("\n")
    for (const secret of [TOKEN, key, REASON, LOCK_REFERENCE, MODIFY_REFERENCE]) expect(raw).not.toContain(secret)

    const parsed = bodies.map((b) => JSON.parse(b) as OtlpBody)
    const resources = parsed.flatMap((b) => b.resourceSpans.map((r) => r.resource))
    for (const resource of resources) {
      expect(attribute(resource.attributes, "service.name")).toBe("creditlock-tracing-test")
    }
    const spans = parsed.flatMap((b) => b.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const servers = spans.filter((s) => s.kind === SERVER)
    const routes = [
      ["PUT", "/credit/v1/customers/:customerId/:holderType/:holderId", 201, "openHolder"],
      ["PUT", "/credit/v1/customers/:customerId/:holderType/:holderId/_lock", 201, "lock"],
      ["PUT", "/credit/v1/customers/:customerId/:holderType/:holderId/_modify", 200, "modify"],
      ["PUT", "/credit/v1/customers/:customerId/:holderType/:holderId/_unlock", 204, "unlock"],
    ] as const
    expect(servers.map((s) => attribute(s.attributes, "http.route"))).toEqual(routes.map(([, route]) => route))
    for (const [method, route, status, operation] of routes) {
      const server = servers.find((s) => attribute(s.attributes, "http.route") === route)
      if (server === undefined) throw new Error(`no span for ${route}`)
      expect(server.name).toBe(`${method} ${route}`)
      expect(attribute(server.attributes, "http.request.method")).toBe(method)
      expect(Number(attribute(server.attributes, "http.response.status_code"))).toBe(status)
      expect(attribute(server.attributes, "http.request.header.authorization")).toBe("<redacted>")
      const engine = spans.filter((s) => s.name.endsWith(`.${operation}`) && s.kind !== SERVER)
      expect(engine, operation).toHaveLength(1)
      const [span] = engine
      expect(span?.traceId).toBe(server.traceId)
      // Up the parents, the engine's span reaches the request's span.
      let at: OtlpSpan | undefined = span
      const chain: Array<string> = []
      while (at?.parentSpanId !== undefined && at.spanId !== server.spanId && chain.length < 10) {
        chain.push(at.name)
        at = byId.get(at.parentSpanId)
      }
      expect(at?.spanId, `${operation}: ${chain.join(" → ")}`).toBe(server.spanId)
    }
    const modifySpan = servers.find((s) => String(attribute(s.attributes, "http.route")).endsWith("/_modify"))
    expect(attribute(modifySpan?.attributes ?? [], "http.request.header.x-lock-key")).toBe("<redacted>")
    expect(attribute(modifySpan?.attributes ?? [], "http.request.header.idempotency-key")).toBe("<redacted>")
  })

  it("sends nothing without an endpoint, or with OTEL_SDK_DISABLED=true", async () => {
    const { endpoint, bodies } = await receiver()
    for (const env of [
      { OTEL_SERVICE_NAME: "unused" },
      { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "true" },
    ]) {
      const provider = ConfigProvider.fromMap(
        new Map<string, string>([
          ["HOST", "127.0.0.1"],
          ["PORT", "0"],
          ["CREDIT_STORE", "memory:"],
          ["CREDIT_CREDENTIALS", JSON.stringify([{ token: TOKEN, customers: ["*"] }])],
          ...Object.entries(env),
        ]),
      )
      const mainConfig = Effect.runSync(Effect.withConfigProvider(config, provider))
      expect(Option.isNone(mainConfig.tracing ?? Option.none())).toBe(true)
      const runtime = ManagedRuntime.make(
        layer(mainConfig).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, Logger.none))),
      )
      const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (s) => s.address))
      const api = `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
      const path = holderPath({ customerId: "cus_none", holderType: "contracts", holderId: "sub_none" })
      expect((await request(api, "PUT", path, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(201)
      await runtime.dispose()
    }
    expect(bodies).toEqual([])
  })

  it("reads the endpoints as the OpenTelemetry specification says", () => {
    const read = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.runSync(Effect.withConfigProvider(config, ConfigProvider.fromMap(new Map(entries)))).tracing
    expect(tracesUrl(new URL("http://collector:4318"))).toBe("http://collector:4318/v1/traces")
    expect(tracesUrl(new URL("http://collector:4318/base/"))).toBe("http://collector:4318/base/v1/traces")
    expect(read([["OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"]])).toEqual(
      Option.some(expect.objectContaining({ url: "http://collector:4318/v1/traces", serviceName: "creditlock" })),
    )
    expect(
      read([
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"],
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/custom"],
        ["OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"],
      ]),
    ).toEqual(Option.some(expect.objectContaining({ url: "https://traces.example/custom", protocol: "http/protobuf" })))
    expect(read([["OTEL_EXPORTER_OTLP_ENDPOINT", ""]])).toEqual(Option.none())
    for (const [name, value] of [
      ["OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"],
      ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector"],
      ["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"],
      ["OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"],
    ] as const) {
      expect(
        () =>
          read([
            ["OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"],
            [name, value],
          ]),
        name,
      ).toThrow(name)
    }
  })
})
