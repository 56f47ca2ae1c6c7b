/**
 * Stopping the server as a supervisor does: SIGTERM to the exact process the start command
 * created, under keep-alive load. Every request is answered or its connection closed, the
 * process exits 0 within the drain deadline, nothing is left running, and no secret reaches the
 * logs.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const TOKEN = "signal-test-admin-token-7f3a"
const credentials = JSON.stringify([{ token: TOKEN, customers: ["*"] }])
const DRAIN_SECONDS = 3
/** Store close, process teardown and (for `pnpm start`) pnpm's own exit, after the drain. */
const EXIT_MARGIN_MS = 2_000

const children: Array<ChildProcess> = []
const dirs: Array<string> = []
/** Processes a start command created, to stop by pid if a failed run left them behind. */
const leftovers: Array<number> = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, "SIGKILL")
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

interface Started {
  readonly child: ChildProcess
  readonly base: string
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

/** Runs a start command and waits for the listening line (a JSON log line naming the URL). */
const launch = (command: string, args: ReadonlyArray<string>, env: Record<string, string>): Promise<Started> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: {
        ...process.env,
        // pnpm's update notice would be a line of its own among the server's.
        npm_config_update_notifier: "false",
        HOST: "127.0.0.1",
        PORT: "0",
        CREDIT_CREDENTIALS: credentials,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, as under a supervisor: whatever it signals stays among its processes.
      detached: true,
    })
    children.push(child)
    let output = ""
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((done) =>
      child.once("exit", (code, signal) => done({ code, signal, at: Date.now() })),
    )
    const timer = setTimeout(() => reject(new Error(`the server did not listen within 60 s:\n${output}`)), 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const url = /"creditlock listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(output)?.[1]
      if (url !== undefined) {
        clearTimeout(timer)
        resolve({ child, base: url, output: () => output, exited })
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the server exited (${code ?? signal}) before listening:\n${output}`))
    })
  })

type Outcome =
  | { readonly _tag: "Answered"; readonly status: number; readonly body: string }
  | { readonly _tag: "Closed" }

/** One request; "Closed" when the connection was closed or refused. Hanging 20 s fails the test. */
const send = (
  agent: Http.Agent,
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Outcome> =>
  new Promise((resolve, reject) => {
    const req = Http.request(
      `${base}${path}`,
      { method, agent, headers: { authorization: `Bearer ${TOKEN}`, ...headers } },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => {
          body += chunk
        })
        res.on("end", () => resolve({ _tag: "Answered", status: res.statusCode ?? 0, body }))
        res.on("error", () => resolve({ _tag: "Closed" }))
      },
    )
    req.on("error", () => resolve({ _tag: "Closed" }))
    req.setTimeout(20_000, () => {
      req.destroy()
      reject(new Error(`${method} ${path}: neither answered nor closed within 20 s`))
    })
    req.end()
  })

/** Clients locking and unlocking their own holders over keep-alive connections until the server is gone. */
const load = (base: string, clients: number) => {
  const agent = new Http.Agent({ keepAlive: true, maxSockets: clients })
  const answered: Array<number> = []
  const keys: Array<string> = []
  let stopped = false
  const holder = (i: number) => `/credit/v1/customers/sig/contracts/h${i}`
  const opened = Promise.all(Array.from({ length: clients }, (_, i) => send(agent, base, "PUT", holder(i))))
  const run = opened.then(() =>
    Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        while (!stopped) {
          const locked = await send(agent, base, "PUT", `${holder(i)}/_lock`)
          if (locked._tag === "Closed") return
          answered.push(locked.status)
          const key = /"key":"([^"]+)"/.exec(locked.body)?.[1]
          if (key === undefined) continue
          keys.push(key)
          const unlocked = await send(agent, base, "PUT", `${holder(i)}/_unlock`, { "x-lock-key": key })
          if (unlocked._tag === "Closed") return
          answered.push(unlocked.status)
        }
      }),
    ),
  )
  return {
    opened,
    answered,
    keys,
    /** Resolves when every client has seen its connection closed (or was stopped). */
    finished: run.finally(() => {
      stopped = true
      agent.destroy()
    }),
    stop: () => {
      stopped = true
    },
  }
}

/** Every process below `pid` (children, their children, …). */
const descendantsOf = (pid: number): Array<number> => {
  const r = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
  if (r.error !== undefined) throw new Error(`the signal tests need ps (apt-get install procps): ${r.error.message}`)
  const children = r.stdout
    .split("\n")
    .map((line) => Number(line.trim()))
    .filter((n) => Number.isInteger(n) && n > 0)
  return children.flatMap((child) => [child, ...descendantsOf(child)])
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** One start, load, SIGTERM to the start command's own pid, and everything checked. */
const stopUnderLoad = async (command: string, args: ReadonlyArray<string>) => {
  const dir = mkdtempSync(join(tmpdir(), "creditlock-signals-"))
  dirs.push(dir)
  const started = await launch(command, args, {
    CREDIT_STORE: `sqlite:${join(dir, "credit.sqlite")}`,
    CREDIT_DRAIN_SECONDS: String(DRAIN_SECONDS),
  })
  const pid = started.child.pid ?? -1
  const descendants = descendantsOf(pid)
  leftovers.push(...descendants)
  const traffic = load(started.base, 16)
  await traffic.opened
  await sleep(150 + Math.floor(Math.random() * 150))
  const before = traffic.answered.length
  const signalled = Date.now()
  process.kill(pid, "SIGTERM")
  const exit = await started.exited
  // A client still being answered now talks to a server left behind: stop them all here.
  traffic.stop()
  // Nothing the start command created outlives it (the server, when a wrapper started it). A
  // helper process of the TypeScript loader (esbuild's service) ends when its parent's pipes
  // close, a moment after that parent: allowed a second, no more.
  for (const child of descendants) {
    for (let waited = 0; alive(child) && waited < 1000; waited += 20) await sleep(20)
    expect(alive(child), `process ${child} still runs`).toBe(false)
  }
  await traffic.finished
  expect(exit, started.output()).toEqual({ code: 0, signal: null, at: exit.at })
  expect(exit.at - signalled, "exit within the drain deadline").toBeLessThan(DRAIN_SECONDS * 1000 + EXIT_MARGIN_MS)
  expect(before, "the server was under load when signalled").toBeGreaterThan(0)
  const output = started.output()
  // Every line is the server's JSON, but for pnpm's own banner before it (`> creditlock@ start …`).
  const lines = output.split("\n").filter((line) => line !== "" && !(command === "pnpm" && line.startsWith("> ")))
  for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
  expect(output).toContain('"creditlock stopping: finishing requests in flight"')
  expect(output).toContain('"creditlock stopped"')
  expect(output).not.toContain(TOKEN)
  for (const key of traffic.keys) expect(output).not.toContain(key)
  return { answered: traffic.answered.length, keys: traffic.keys.length }
}

describe("SIGTERM under keep-alive load", () => {
  it("pnpm start: the pid it created exits 0 within the drain deadline, 10 times out of 10", async () => {
    for (let run = 0; run < 10; run++) await stopUnderLoad("pnpm", ["start"])
  }, 600_000)

  it("creditlock serve: the same, with the server as the process signalled, 10 times out of 10", async () => {
    for (let run = 0; run < 10; run++) {
      await stopUnderLoad(process.execPath, ["--import", "tsx", "packages/server/src/bin.ts", "serve"])
    }
  }, 600_000)
})

/** A request whose body never finishes arriving: in flight until the server closes its connection. */
const stalled = (base: string): { readonly closed: Promise<string> } => {
  const req = Http.request(`${base}/credit/v1/customers/sig/contracts/stall/_unlock`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", "content-length": "1000" },
  })
  req.write('{"partial":')
  const closed = new Promise<string>((resolve) => {
    req.on("error", (error) => resolve(String(error)))
    req.on("response", (res) => resolve(`answered ${res.statusCode}`))
  })
  return { closed }
}

describe("the drain deadline and a second signal", () => {
  const serve = (env: Record<string, string>) =>
    launch(process.execPath, ["--import", "tsx", "packages/server/src/bin.ts", "serve"], {
      CREDIT_STORE: "memory:",
      ...env,
    })

  it("closes a request still in flight at the deadline and exits 0", async () => {
    const started = await serve({ CREDIT_DRAIN_SECONDS: "1" })
    const request = stalled(started.base)
    await sleep(200)
    const signalled = Date.now()
    process.kill(started.child.pid ?? -1, "SIGTERM")
    const exit = await started.exited
    expect(exit.code, started.output()).toBe(0)
    expect(exit.at - signalled).toBeLessThan(1000 + EXIT_MARGIN_MS)
    expect(await request.closed).toMatch(/socket hang up|ECONNRESET/)
    expect(started.output()).toContain("requests still in flight at the drain deadline")
  }, 120_000)

  it("exits at once on a second signal while draining", async () => {
    const started = await serve({ CREDIT_DRAIN_SECONDS: "60" })
    stalled(started.base)
    await sleep(200)
    process.kill(started.child.pid ?? -1, "SIGTERM")
    const deadline = Date.now() + 30_000
    while (!started.output().includes("creditlock stopping") && Date.now() < deadline) await sleep(20)
    expect(started.output()).toContain("creditlock stopping")
    const second = Date.now()
    process.kill(started.child.pid ?? -1, "SIGTERM")
    const exit = await started.exited
    // Not the 60 s drain: the second signal ended the process.
    expect(exit.at - second).toBeLessThan(5_000)
    expect(exit.code === 0 && exit.signal === null).toBe(false)
  }, 120_000)

  it("answers /readyz 503 SHUTTING_DOWN, with Connection: close, to a request that arrives while draining", async () => {
    const started = await serve({ CREDIT_DRAIN_SECONDS: "5" })
    // A request in flight holds the drain open; a second connection has begun its request
    // (a connection in the middle of a request is not idle, so draining does not close it).
    const request = stalled(started.base)
    const port = Number(new URL(started.base).port)
    const probe = Net.connect(port, "127.0.0.1")
    let reply = ""
    probe.setEncoding("utf8")
    probe.on("data", (chunk: string) => {
      reply += chunk
    })
    const ended = new Promise<void>((resolve) => probe.once("close", () => resolve()))
    await new Promise<void>((resolve) => probe.once("connect", () => resolve()))
    probe.write("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await sleep(200)
    const before = await new Promise<number>((resolve) =>
      Http.get(`${started.base}/readyz`, { agent: false }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      }),
    )
    expect(before, "ready before the signal").toBe(200)
    process.kill(started.child.pid ?? -1, "SIGINT")
    const deadline = Date.now() + 30_000
    while (!started.output().includes("creditlock stopping") && Date.now() < deadline) await sleep(20)
    expect(started.output()).toContain("creditlock stopping")
    probe.write("\r\n")
    await ended
    expect(reply).toMatch(/^HTTP\/1\.1 503 /)
    expect(reply.toLowerCase()).toContain("connection: close")
    expect(reply).toContain("SHUTTING_DOWN")
    // New connections are refused: the listener is closed.
    const refused = await new Promise<string>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve("connected")
      })
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"))
    })
    expect(refused).toBe("ECONNREFUSED")
    const exit = await started.exited
    expect(exit, started.output()).toEqual({ code: 0, signal: null, at: exit.at })
    expect(await request.closed).toMatch(/socket hang up|ECONNRESET/)
  }, 120_000)

  it("drains on SIGINT as on SIGTERM: the request in flight is answered, and the process exits 0", async () => {
    const started = await serve({ CREDIT_DRAIN_SECONDS: "5" })
    const agent = new Http.Agent({ keepAlive: true })
    expect(await send(agent, started.base, "PUT", "/credit/v1/customers/sig/contracts/int")).toMatchObject({
      _tag: "Answered",
      status: 201,
    })
    // A body sent only after the signal: the request is in flight (its headers read, as the
    // server's 100 Continue shows) while the server drains.
    const answered = new Promise<number>((resolve, reject) => {
      const req = Http.request(`${started.base}/credit/v1/customers/sig/contracts/int/_lock`, {
        method: "PUT",
        agent,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          "content-length": "2",
          expect: "100-continue",
        },
      })
      req.on("response", (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.on("continue", () => {
        void (async () => {
          process.kill(started.child.pid ?? -1, "SIGINT")
          const deadline = Date.now() + 30_000
          while (!started.output().includes("creditlock stopping") && Date.now() < deadline) await sleep(20)
          req.end("{}")
        })()
      })
      req.flushHeaders()
    })
    expect(await answered).toBe(201)
    agent.destroy()
    const exit = await started.exited
    expect(exit, started.output()).toEqual({ code: 0, signal: null, at: exit.at })
    expect(started.output()).toContain('"creditlock stopped"')
  }, 120_000)

  it("writes every line as JSON", async () => {
    const started = await serve({})
    await new Promise<void>((resolve) => {
      Http.get(`${started.base}/healthz`, (res) => {
        res.resume()
        res.on("end", () => resolve())
      })
    })
    process.kill(started.child.pid ?? -1, "SIGTERM")
    expect((await started.exited).code).toBe(0)
    const lines = started
      .output()
      .split("\n")
      .filter((line) => line !== "")
    expect(lines.length).toBeGreaterThanOrEqual(4)
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
  }, 120_000)
})
