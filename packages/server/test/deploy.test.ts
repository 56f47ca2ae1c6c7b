/**
 * The systemd unit of the operator documentation (deploy/creditlock.service): systemd accepts it,
 * it sets only documented variables, it leaves room for the drain, and the server runs and stops
 * as it says — its command and environment, its stop signal, its stop timeout.
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { usage } from "../src/Cli.js"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const unitPath = fileURLToPath(new URL("../deploy/creditlock.service", import.meta.url))
const unit = readFileSync(unitPath, "utf8")

const settings = (key: string): Array<string> =>
  unit
    .split("\n")
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1))

const setting = (key: string): string => {
  const [value, ...more] = settings(key)
  if (value === undefined || more.length > 0) throw new Error(`the unit must set ${key} exactly once`)
  return value
}

const environment = Object.fromEntries(
  settings("Environment").map((assignment) => {
    const at = assignment.indexOf("=")
    return [assignment.slice(0, at), assignment.slice(at + 1)]
  }),
)

const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("deploy/creditlock.service", () => {
  it("passes systemd-analyze verify", () => {
    const r = spawnSync("systemd-analyze", ["verify", unitPath], { encoding: "utf8", cwd: tmpdir() })
    if (r.error !== undefined) {
      throw new Error(`this test needs systemd-analyze (apt-get install systemd): ${r.error.message}`)
    }
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0)
    expect(r.stderr, "systemd-analyze warns about the unit").not.toMatch(/creditlock\.service:\d+:/)
  })

  it("sets only variables the server documents, and stops later than the drain deadline", () => {
    expect(Object.keys(environment).length).toBeGreaterThan(0)
    for (const name of Object.keys(environment)) expect(usage, `${name} is not a documented variable`).toContain(name)
    const drain = Number(environment.CREDIT_DRAIN_SECONDS)
    expect(Number.isInteger(drain)).toBe(true)
    expect(Number(setting("TimeoutStopSec"))).toBeGreaterThan(drain + 2)
    expect(setting("KillSignal")).toBe("SIGTERM")
  })

  it("runs as its ExecStart says, serves /readyz, and exits 0 within TimeoutStopSec on its KillSignal", async () => {
    const [env, program, ...args] = setting("ExecStart").split(" ")
    expect([env, program]).toEqual(["/usr/bin/env", "creditlock"])
    const dir = mkdtempSync(join(tmpdir(), "creditlock-unit-"))
    dirs.push(dir)
    // The unit's environment, with the port and the state directory of this test.
    const child = spawn(process.execPath, ["--import", "tsx", "packages/server/src/bin.ts", ...args], {
      cwd: root,
      env: {
        ...process.env,
        ...environment,
        PORT: "0",
        CREDIT_STORE: environment.CREDIT_STORE?.replace("/var/lib/creditlock", dir) ?? "",
        CREDIT_CREDENTIALS: JSON.stringify([{ token: "unit-test-token", customers: ["*"] }]),
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    const exited = new Promise<{ code: number | null; at: number }>((done) =>
      child.once("exit", (code) => done({ code, at: Date.now() })),
    )
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not listen:\n${output}`)), 60_000)
      const read = (chunk: Buffer) => {
        output += chunk.toString("utf8")
        const found = /"creditlock listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(output)?.[1]
        if (found !== undefined) {
          clearTimeout(timer)
          resolve(found)
        }
      }
      child.stdout.on("data", read)
      child.stderr.on("data", read)
      void exited.then(() => reject(new Error(`the server exited:\n${output}`)))
    })
    expect(output).toContain(`sqlite:${dir}/creditlock.sqlite`)
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    const signalled = Date.now()
    child.kill(setting("KillSignal") as NodeJS.Signals)
    const exit = await exited
    expect(exit.code, output).toBe(0)
    expect(exit.at - signalled).toBeLessThan(Number(setting("TimeoutStopSec")) * 1000)
  }, 120_000)
})
