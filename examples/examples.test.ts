import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = async (file: string): Promise<string> => {
  const path = fileURLToPath(new URL(file, import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path], { timeout: 60_000 })
  return stdout
}

describe("examples run as users run them", () => {
  it("quickstart-effect", async () => {
    const out = await run("./quickstart-effect.ts")
    expect(out).toMatch(/GBP credit: 1300 pence \(journal entry [0-9a-f-]{36}\)/)
    expect(out).toContain("journal verified: true")
  })

  it("quickstart-promise", async () => {
    const out = await run("./quickstart-promise.ts")
    expect(out).toContain("refused: 422 INSUFFICIENT_CREDIT")
    expect(out).toContain("GBP credit: 2500")
    expect(out).toContain("journal verified: true")
  })
})
