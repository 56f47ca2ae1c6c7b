/**
 * The `creditlock` executable as `pnpm start` runs it: a child process on a free port, configured
 * by environment variables, stopped with SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { request } from "./harness.js"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const entry = "packages/server/src/bin.ts"

/**
 * A module for `node --import` that makes the packages named look not installed (as Node says it
 * when a package is missing), to run the server as a user who installed only some adapters.
 */
const hiding = (packages: ReadonlyArray<string>): string => {
  const hooks = `export async function resolve(specifier, context, next) {
    const hidden = ${JSON.stringify(packages)}.find((p) => specifier === p || specifier.startsWith(p + "/"))
    if (hidden !== undefined) {
      const error = new Error("Cannot find package '" + hidden + "' imported from " + context.parentURL)
      error.code = "ERR_MODULE_NOT_FOUND"
      throw error
    }
    return next(specifier, context)
  }`
  const register = `import { register } from "node:module"
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)})`
  return `data:text/javascript,${encodeURIComponent(register)}`
}

interface Running {
  readonly child: ChildProcess
  readonly url: string
  readonly token: string | undefined
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const children: Array<ChildProcess> = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
})

/** What to run the entry point with besides the environment: its arguments, packages to hide. */
interface RunOptions {
  /** Default `["serve"]`. */
  readonly args?: ReadonlyArray<string>
  readonly hide?: ReadonlyArray<string>
}

const argv = (options: RunOptions): Array<string> => [
  "--import",
  "tsx",
  ...(options.hide === undefined ? [] : ["--import", hiding(options.hide)]),
  entry,
  ...(options.args ?? ["serve"]),
]

const start = (env: Record<string, string>, options: RunOptions = {}): Promise<Running> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv(options), {
      cwd: root,
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    children.push(child)
    let output = ""
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)))
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 45_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1]
      const docs = output.includes('"docs":"')
      const storeLine = output.includes('"store":"')
      const tokenNeeded = (env.CREDIT_CREDENTIALS ?? "") === ""
      const token = /"adminToken":"([^"]+)"/.exec(output)?.[1]
      if (url !== undefined && docs && storeLine && (!tokenNeeded || token !== undefined)) {
        clearTimeout(timer)
        resolve({ child, url, token, output: () => output, exited })
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })

const stop = async (running: Running): Promise<number | null> => {
  running.child.kill("SIGTERM")
  const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 15_000))
  const code = await Promise.race([running.exited, timeout])
  if (code === "timeout") throw new Error(`server did not stop on SIGTERM:\n${running.output()}`)
  return code
}

/** Runs the entry point to completion (for configurations and commands it must refuse). */
const runToExit = (
  env: Record<string, string>,
  options: RunOptions = {},
): Promise<{ code: number | null; stdout: string; stderr: string; output: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, argv(options), {
      cwd: root,
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    children.push(child)
    let output = ""
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      stderr += chunk.toString()
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 45_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, output })
    })
  })

describe("pnpm start", () => {
  it("is the root package's start script, and the package's creditlock bin", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }
    expect(pkg.scripts.start).toContain(entry)
    const server = JSON.parse(readFileSync(join(root, "packages/server/package.json"), "utf8")) as {
      bin: Record<string, string>
    }
    expect(server.bin.creditlock).toBe("./dist/src/bin.js")
  })

  it("serves with no command as with serve", async () => {
    const server = await start({ CREDIT_STORE: "memory:", CREDIT_CREDENTIALS: "" }, { args: [] })
    expect((await request(server.url, "GET", "/healthz")).json).toEqual({ status: "ok" })
    expect(await stop(server)).toBe(0)
  })

  it("prints the usage and exits non-zero on an unknown command; help prints it and exits 0", async () => {
    const unknown = await runToExit({ CREDIT_STORE: "memory:" }, { args: ["srve"] })
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("creditlock: unknown command: srve")
    expect(unknown.stderr).toContain("Usage: creditlock [serve]")
    expect(unknown.stdout).not.toContain("listening")
    const help = await runToExit({}, { args: ["help"] })
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("Usage: creditlock [serve]")
  })

  it("names the package to install when CREDIT_STORE asks for an adapter that is not installed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "creditlock-server-"))
    try {
      const sqlite = await runToExit(
        { CREDIT_STORE: `sqlite:${join(dir, "credit.sqlite")}` },
        { hide: ["@creditlock/sqlite", "@creditlock/redis"] },
      )
      expect(sqlite.code).not.toBe(0)
      expect(sqlite.stderr).toContain("creditlock: CREDIT_STORE sqlite:… needs the package @creditlock/sqlite")
      expect(sqlite.stderr).toContain("npm install @creditlock/sqlite")
      // A refusal is one line for a person, not a stack trace.
      expect(sqlite.stderr).not.toMatch(/^\s+at /m)
      const redis = await runToExit(
        { CREDIT_STORE: "redis://user:hunter2@127.0.0.1:1" },
        { hide: ["@creditlock/sqlite", "@creditlock/redis"] },
      )
      expect(redis.code).not.toBe(0)
      expect(redis.output).toContain("npm install @creditlock/redis")
      expect(redis.output).not.toContain("hunter2")
      // memory: needs no adapter package beyond the server's own dependencies.
      const memory = await start(
        { CREDIT_STORE: "memory:", CREDIT_CREDENTIALS: "" },
        { hide: ["@creditlock/sqlite", "@creditlock/redis"] },
      )
      expect(await stop(memory)).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("boots on memory:, prints URL, docs and a generated admin token, serves, and stops cleanly on SIGTERM", async () => {
    const server = await start({ CREDIT_STORE: "memory:", CREDIT_CREDENTIALS: "" })
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(server.output()).toContain(`"docs":"${server.url}/docs"`)
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const token = server.token ?? ""

    expect((await request(server.url, "GET", "/healthz")).json).toEqual({ status: "ok" })
    const docs = await request(server.url, "GET", "/docs")
    expect(docs.status).toBe(200)
    expect(docs.text).toContain("swagger-ui")
    const holder = "/credit/v1/customers/c1/contracts/s1"
    expect((await request(server.url, "PUT", holder)).status).toBe(401)
    expect((await request(server.url, "PUT", holder, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
      201,
    )
    const locked = await request(server.url, "PUT", `${holder}/_lock`, {
      headers: { authorization: `Bearer ${token}` },
    })
    const key = (locked.json as { data: { lock: { key: string } } }).data.lock.key

    expect(await stop(server)).toBe(0)
    const output = server.output()
    expect(output).toContain("creditlock stopping")
    const logs = output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { annotations: Record<string, unknown> })
    expect(
      logs.some((l) => l.annotations.route === "/credit/v1/customers/:customerId/:holderType/:holderId/_lock"),
    ).toBe(true)
    // The token is printed once, at start, and never again; the lock key never.
    expect(output.split(token).length - 1).toBe(1)
    expect(output).not.toContain(key)
  })

  it("serves a SQLite store (creating its folder) whose data survives a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "creditlock-server-"))
    try {
      const env = {
        CREDIT_STORE: `sqlite:${join(dir, "nested", "folder", "credit.sqlite")}`,
        CREDIT_CREDENTIALS: JSON.stringify([{ token: "sqlite-test-token", customers: ["*"] }]),
      }
      const auth = { authorization: "Bearer sqlite-test-token", "content-type": "application/json" }
      const holder = "/credit/v1/customers/c9/customers/c9"
      const first = await start(env)
      expect(first.token).toBeUndefined()
      expect(first.output()).not.toContain("sqlite-test-token")
      expect((await request(first.url, "PUT", holder, { headers: auth })).status).toBe(201)
      const locked = await request(first.url, "PUT", `${holder}/_lock`, { headers: auth })
      const key = (locked.json as { data: { lock: { key: string } } }).data.lock.key
      const modified = await request(first.url, "PUT", `${holder}/_modify`, {
        headers: { ...auth, "x-lock-key": key },
        body: JSON.stringify({
          reason: "durable",
          modifications: [{ type: "monetary", changeAmount: { currencyCode: "EUR", value: 4200 } }],
        }),
      })
      expect(modified.status).toBe(200)
      expect(await stop(first)).toBe(0)

      const second = await start(env)
      const read = await request(second.url, "GET", holder, { headers: auth })
      expect(read.json).toMatchObject({
        data: { current: { credit: [{ amount: { currencyCode: "EUR", value: 4200 } }] } },
      })
      expect(await stop(second)).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("refuses a busy port with one JSON line naming host and port, and a non-zero exit", async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    try {
      const port = (blocker.address() as AddressInfo).port
      const busy = await runToExit({ CREDIT_STORE: "memory:", PORT: String(port) })
      expect(busy.code).not.toBe(0)
      const lines = busy.output.split("\n").filter((line) => line !== "")
      expect(lines).toHaveLength(1)
      const line = JSON.parse(lines[0] ?? "") as { message: string; logLevel: string }
      expect(line.logLevel).toBe("ERROR")
      expect(line.message).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })

  it("logs at LOG_LEVEL: warning leaves out start-up and request lines, an unknown level is refused", async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const child = spawn(process.execPath, argv({}), {
      cwd: root,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: String(port),
        CREDIT_STORE: "memory:",
        CREDIT_CREDENTIALS: JSON.stringify([{ token: "quiet-token", customers: ["*"] }]),
        LOG_LEVEL: "warning",
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    children.push(child)
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)))
    const until = Date.now() + 45_000
    let status = 0
    while (status !== 200 && Date.now() < until && child.exitCode === null) {
      status = await request(`http://127.0.0.1:${port}`, "GET", "/healthz").then(
        (r) => r.status,
        () => 0,
      )
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(status, output).toBe(200)
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
    expect(output).not.toContain('"message":"request"')
    expect(output).not.toContain("listening on")
    const bad = await runToExit({ CREDIT_STORE: "memory:", LOG_LEVEL: "loud" })
    expect(bad.code).not.toBe(0)
    expect(bad.output).toContain("LOG_LEVEL")
  })

  it("refuses invalid configuration with a message that names it, without echoing secrets", async () => {
    const badStore = await runToExit({ CREDIT_STORE: "ftp://nope" })
    expect(badStore.code).not.toBe(0)
    expect(badStore.output).toContain("CREDIT_STORE")
    const badCredentials = await runToExit({
      CREDIT_STORE: "memory:",
      CREDIT_CREDENTIALS: '[{"token":"super-secret value","customers":["*"]}]',
    })
    expect(badCredentials.code).not.toBe(0)
    expect(badCredentials.output).toContain("CREDIT_CREDENTIALS[0].token")
    expect(badCredentials.output).not.toContain("super-secret")
  })

  it("refuses tracing without @effect/opentelemetry installed, naming the package, with status 1", async () => {
    const noTracing = await runToExit(
      { CREDIT_STORE: "memory:", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" },
      { hide: ["@effect/opentelemetry"] },
    )
    expect(noTracing.code).toBe(1)
    expect(noTracing.stderr).toContain("needs the package @effect/opentelemetry")
    expect(noTracing.stderr).toContain("npm install @effect/opentelemetry")
    expect(noTracing.stderr).not.toMatch(/^\s+at /m)
    expect(noTracing.output).not.toContain("listening on")
  })
})
