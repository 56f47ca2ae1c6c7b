/**
 * The cost of the HTTP layer: autocannon against the creditlock API (`@creditlock/http`, mounted
 * in a `node:http` server) and against a bare `node:http` server calling the same `CreditEngine`
 * (same storage, a bearer-token check, JSON in and out) — GET credit, and the lock → modify →
 * unlock flow with one holder per connection.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { CreditError, createCreditEngine, type HolderRef } from "@creditlock/core"
import { Server as CreditServer } from "@creditlock/http"
import { MemoryStorage } from "@creditlock/memory"
import autocannon from "autocannon"
import { Duration, Redacted } from "effect"

const TOKEN = "bench-token"

/** What one autocannon run measured. */
export interface HttpResult {
  readonly requestsPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly non2xx: number
  readonly errors: number
}

/** A flow result: requests/s of the three-request cycle, and cycles/s. */
export interface HttpComparison {
  readonly route: "GET credit" | "lock → modify → unlock"
  readonly library: HttpResult
  readonly baseline: HttpResult
}

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

const body = async (req: IncomingMessage): Promise<string> => {
  let text = ""
  for await (const chunk of req) text += chunk
  return text
}

/** A bare node:http server over the Promise facade: the same four routes, no framework. */
const bareServer = () => {
  const engine = createCreditEngine({ storage: MemoryStorage.layer() })
  const server = createServer(async (req, res) => {
    const send = (status: number, value?: unknown) => {
      res.writeHead(status, { "content-type": "application/json" })
      res.end(value === undefined ? undefined : JSON.stringify(value))
    }
    try {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: "unauthorised" })
      const match =
        /^\/credit\/v1\/customers\/([^/]+)\/(contracts|customers)\/([^/]+)(?:\/(_lock|_modify|_unlock))?$/.exec(
          req.url ?? "",
        )
      if (match === null) return send(404)
      const ref: HolderRef = {
        customerId: decodeURIComponent(match[1] as string),
        holderType: match[2] as "contracts",
        holderId: decodeURIComponent(match[3] as string),
      }
      const holder = { type: "contract", id: ref.holderId }
      switch (`${req.method} ${match[4] ?? ""}`) {
        case "GET ": {
          const view = await engine.getCredit(ref)
          return send(200, { data: { holder, current: view.current }, meta: {} })
        }
        case "PUT ":
          await engine.openHolder(ref)
          return send(201, { data: { holder }, meta: {} })
        case "PUT _lock": {
          const { credit, lock } = await engine.lock(ref)
          return send(201, { data: { credit: { holder, current: credit.current }, lock }, meta: {} })
        }
        case "PUT _modify": {
          const result = await engine.modify(ref, String(req.headers["x-lock-key"] ?? ""), JSON.parse(await body(req)))
          return send(200, { data: { holder, current: result.current }, meta: { entryId: result.entryId } })
        }
        case "PUT _unlock": {
          const { key } = JSON.parse(await body(req)) as { key: string }
          await engine.unlock(ref, key)
          return send(204)
        }
        default:
          return send(404)
      }
    } catch (error) {
      if (error instanceof CreditError) return send(error.status, { error: [{ code: error.code }] })
      return send(500)
    }
  })
  return { server, close: () => close(server).then(() => engine.close()) }
}

/** The creditlock API in a node:http server, with a rate limit far above what the run can reach. */
const libraryServer = async () => {
  const { handler, dispose } = await CreditServer.toNodeHandler({
    storage: MemoryStorage.layer(),
    credentials: [{ token: Redacted.make(TOKEN), customers: ["*"] }],
    rateLimit: { limit: 1_000_000_000, window: Duration.minutes(1) },
    logRequests: false,
  })
  const server = createServer(handler)
  return { server, close: () => close(server).then(dispose) }
}

const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }
const modifyBody = JSON.stringify({
  reason: "bench",
  modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 1 } }],
})

const run = (options: autocannon.Options): Promise<HttpResult> =>
  new Promise((resolve, reject) => {
    autocannon(options, (error, result) => {
      if (error !== null && error !== undefined) return reject(error)
      resolve({
        requestsPerSecond: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors + result.timeouts,
      })
    })
  })

const measure = async (base: string, route: HttpComparison["route"], seconds: number, connections: number) => {
  const holders = Array.from({ length: connections }, (_, i) => `/credit/v1/customers/bench-c${i}/contracts/h${i}`)
  for (const path of holders) await fetch(`${base}${path}`, { method: "PUT", headers, body: "{}" })
  if (route === "GET credit") {
    return run({ url: base, connections, duration: seconds, headers, requests: [{ method: "GET", path: holders[0] }] })
  }
  // autocannon clears a connection's context at each new sequence: holders are taken from a
  // free list when a cycle starts and given back when it ends, so no two cycles share one.
  const free = [...holders]
  type Context = { holder?: string; key?: string }
  return run({
    url: base,
    connections,
    duration: seconds,
    headers,
    requests: [
      {
        method: "PUT",
        setupRequest: (req, context: Context) => {
          context.holder = free.pop() ?? (holders[0] as string)
          return { ...req, path: `${context.holder}/_lock` }
        },
        onResponse: (status, responseBody, context: Context) => {
          if (status === 201)
            context.key = (JSON.parse(responseBody) as { data: { lock: { key: string } } }).data.lock.key
        },
      },
      {
        method: "PUT",
        setupRequest: (req, context: Context) => ({
          ...req,
          path: `${context.holder}/_modify`,
          headers: { ...headers, "x-lock-key": context.key ?? "" },
          body: modifyBody,
        }),
      },
      {
        method: "PUT",
        setupRequest: (req, context: Context) => ({
          ...req,
          path: `${context.holder}/_unlock`,
          body: JSON.stringify({ key: context.key }),
        }),
        onResponse: (_status, _body, context: Context) => {
          if (context.holder !== undefined) free.push(context.holder)
        },
      },
    ],
  })
}

/** Both routes on both servers, one after the other. */
export const runHttpBench = async (seconds: number, connections = 16): Promise<ReadonlyArray<HttpComparison>> => {
  const rows: Array<HttpComparison> = []
  for (const route of ["GET credit", "lock → modify → unlock"] as const) {
    const lib = await libraryServer()
    const library = await measure(await listen(lib.server), route, seconds, connections).finally(lib.close)
    const bare = bareServer()
    const baseline = await measure(await listen(bare.server), route, seconds, connections).finally(bare.close)
    rows.push({ route, library, baseline })
  }
  return rows
}

/** The HTTP table. */
export const httpTable = (rows: ReadonlyArray<HttpComparison>): string =>
  [
    "| route | creditlock HTTP req/s | bare node:http req/s | ratio | p50 ms (lib / bare) | p99 ms (lib / bare) | non-2xx | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.route} | ${Math.round(r.library.requestsPerSecond)} | ${Math.round(r.baseline.requestsPerSecond)} | ${(r.library.requestsPerSecond / r.baseline.requestsPerSecond).toFixed(2)}× | ${r.library.p50} / ${r.baseline.p50} | ${r.library.p99} / ${r.baseline.p99} | ${r.library.non2xx + r.baseline.non2xx} | ${r.library.errors + r.baseline.errors} |`,
    ),
  ].join("\n")
