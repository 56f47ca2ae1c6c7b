/**
 * `@creditlock/testing` outside the repository. The packed tarballs of the core, memory, testing
 * and test-suite packages (packed as `pnpm publish` packs them) are installed with npm into a
 * project under the system's temporary folder, with `effect`, `fast-check`, `vitest` and
 * `@effect/vitest` from the registry. There every TypeScript block of packages/testing/README.md
 * is copied unchanged into its own test file and run by vitest (the conformance call of "Write
 * your own adapter" included), and type-checked as a strict consumer does (`node16` resolution).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pack, root, run } from "./pack.js"

const published = ["packages/core", "packages/memory", "packages/testing", "test"]

const registry = [
  "effect@3.22.4",
  "fast-check@4",
  "vitest@3.2.7",
  "@effect/vitest@0.30.0",
  "typescript@5.9.3",
  "@types/node@20",
]

/** The README's ```ts blocks, as written. */
const blocks = [
  ...readFileSync(join(root, "packages", "testing", "README.md"), "utf8").matchAll(/^```ts\n([\s\S]*?)^```$/gm),
].map((m) => m[1] ?? "")

const work = mkdtempSync(join(tmpdir(), "creditlock-testing-"))
const dir = join(work, "consumer")

/** npm's environment: this process's, without the npm_* settings pnpm exports to scripts. */
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))

beforeAll(async () => {
  if (!relative(root, work).startsWith("..")) throw new Error(`${work} is inside the repository`)
  const tarballs: Array<string> = []
  for (const folder of published) tarballs.push(await pack(folder, work))
  mkdirSync(dir)
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2),
  )
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", ...tarballs, ...registry],
    dir,
    {
      env,
      timeout: 200_000,
    },
  )
  for (const [i, code] of blocks.entries()) writeFileSync(join(dir, `readme-${i + 1}.test.ts`), code)
}, 240_000)

afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("@creditlock/testing installed from its tarball", { timeout: 240_000 }, () => {
  it("the README has examples of every part", () => {
    expect(blocks.length).toBe(6)
    for (const name of [
      "Arbitraries",
      "createTestCreditEngine",
      "TestEngine",
      "FaultStorage",
      "Invariants",
      "conformance",
    ]) {
      expect(
        blocks.some((b) => b.includes(name)),
        name,
      ).toBe(true)
    }
  })

  it("runs every README example as written (vitest)", async () => {
    const report = join(work, "vitest.json")
    await run(
      process.execPath,
      [join(dir, "node_modules", "vitest", "vitest.mjs"), "run", "--reporter=json", `--outputFile=${report}`],
      dir,
      { env, timeout: 200_000 },
    )
    const result = JSON.parse(readFileSync(report, "utf8")) as {
      numFailedTests: number
      numPassedTests: number
      numPendingTests: number
      testResults: ReadonlyArray<{ name: string; status: string }>
    }
    expect(result.testResults.map((r) => [relative(dir, r.name), r.status]).sort()).toEqual(
      blocks.map((_, i) => [`readme-${i + 1}.test.ts`, "passed"]).sort(),
    )
    expect(result.numFailedTests).toBe(0)
    expect(result.numPendingTests).toBe(0)
    // The five examples of this package, and the conformance suite's many tests.
    expect(result.numPassedTests).toBeGreaterThan(50)
  })

  it("type-checks the README examples as a strict consumer (node16)", async () => {
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022"],
          module: "node16",
          moduleResolution: "node16",
          types: ["node"],
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          verbatimModuleSyntax: true,
          moduleDetection: "force",
          noEmit: true,
          // vitest's own declarations do not all check under node16; the packages' are checked by attw.
          skipLibCheck: true,
        },
        include: ["readme-*.test.ts"],
      }),
    )
    await run(join(dir, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], dir, { env, timeout: 120_000 })
  })

  it("holds one copy of effect, and the testing packages share the project's fast-check", async () => {
    const ls = async (name: string) =>
      (await run("npm", ["ls", name, "--all", "--parseable"], dir, { env })).split("\n").filter(Boolean)
    expect(await ls("effect")).toEqual([join(dir, "node_modules", "effect")])
    // effect brings a fast-check 3 of its own for its internal use; nothing of ours resolves to it.
    const copies = (await ls("fast-check")).filter((path) => !path.startsWith(join(dir, "node_modules", "effect", "")))
    expect(copies).toEqual([join(dir, "node_modules", "fast-check")])
    const version = (
      JSON.parse(readFileSync(join(dir, "node_modules", "fast-check", "package.json"), "utf8")) as { version: string }
    ).version
    expect(version).toMatch(/^4\./)
  })
})
