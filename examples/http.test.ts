import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = async (file: string): Promise<string> => {
  const path = fileURLToPath(new URL(file, import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path], { timeout: 60_000 })
  return stdout
}

describe("HTTP examples run as users run them", () => {
  it("http-mount: the API inside an existing node:http server, next to the host's routes", async () => {
    const out = await run("./http-mount.ts")
    expect(out).toContain("host route: host home page")
    expect(out).toContain('host status: {"host":"up"}')
    expect(out).toContain('creditlock health: {"status":"ok"}')
    expect(out).toContain("open holder: 201")
    expect(out).toContain("modify: 200")
    expect(out).toContain("credit: 1000 GBP")
    expect(out).toMatch(/unknown route: 404 \{"error":\[\{"status":"404",.*"code":"ROUTE_NOT_FOUND"\}\]\}/)
  })

  it("http-client: the typed client against a server", async () => {
    const out = await run("./http-client.ts")
    expect(out).toContain("opened: true")
    expect(out).toMatch(/GBP credit: 2500 \(journal entry [0-9a-f-]{36}\)/)
    expect(out).toContain("second lock refused: CREDIT_LOCKED")
    expect(out).toContain("journal: opened, modification")
  })
})
