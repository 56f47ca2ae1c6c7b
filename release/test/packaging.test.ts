/**
 * What the published packages ship. Each package is packed as `pnpm publish` would pack it (its
 * `prepack` builds it first), then the tarball is checked: it holds the built `dist/` with
 * declarations, its manifest names no workspace protocol and takes `effect` as a peer, its
 * `exports` carry `types` and `import`, and publint and arethetypeswrong (ESM profile: the
 * packages are ESM only) find nothing wrong.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bin, pack as packInto, run } from "./pack.js"

const out = mkdtempSync(join(tmpdir(), "creditlock-pack-"))
afterAll(() => rmSync(out, { recursive: true, force: true }))

/** The published packages, by folder. */
const packages = [
  "packages/core",
  "packages/memory",
  "packages/sqlite",
  "packages/redis",
  "packages/postgres",
  "packages/http",
  "packages/server",
  "packages/testing",
  "test",
] as const

const pack = (folder: string): Promise<string> => packInto(folder, out)

interface Manifest {
  readonly name: string
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly exports: Record<string, { readonly types?: string; readonly import?: string } | string>
}

describe("published packages", () => {
  for (const folder of packages) {
    it(`${folder}: the packed tarball holds dist/ and passes publint and arethetypeswrong`, async () => {
      const tarball = await pack(folder)
      const files = (await run("tar", ["tzf", tarball])).split("\n")
      expect(files).toContain("package/dist/src/index.js")
      expect(files).toContain("package/dist/src/index.d.ts")
      expect(files).toContain("package/LICENSE")
      const text = await run("tar", ["xzOf", tarball, "package/package.json"])
      expect(text).not.toContain("workspace:")
      const manifest = JSON.parse(text) as Manifest
      expect(manifest.dependencies?.effect, "effect must be a peer, not a dependency").toBeUndefined()
      expect(manifest.peerDependencies?.effect).toMatch(/^\^3\./)
      for (const [path, target] of Object.entries(manifest.exports)) {
        expect(typeof target, `exports["${path}"]`).toBe("object")
        if (typeof target === "object") {
          expect(target.types, `exports["${path}"].types`).toMatch(/^\.\/dist\/.*\.d\.ts$/)
          expect(target.import, `exports["${path}"].import`).toMatch(/^\.\/dist\/.*\.js$/)
          expect(files).toContain(`package/${(target.import as string).slice(2)}`)
        }
      }
      const lint = await run(bin("publint"), ["--strict", tarball])
      expect(lint).toContain("All good!")
      // Exits non-zero on any problem of the ESM resolutions (node16 from ESM, bundler).
      await run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "ascii"])
    }, 120_000)
  }

  it("@creditlock/http installs without a storage adapter or a native addon", async () => {
    const manifest = JSON.parse(
      await run("tar", ["xzOf", await pack("packages/http"), "package/package.json"]),
    ) as Manifest
    const names = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })
    expect(names).toContain("@creditlock/core")
    for (const forbidden of ["@creditlock/sqlite", "@creditlock/redis", "better-sqlite3", "ioredis"]) {
      expect(names).not.toContain(forbidden)
    }
  }, 120_000)
})
