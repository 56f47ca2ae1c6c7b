/**
 * A consumer outside the repository. The published packages are packed as `pnpm publish` packs
 * them, then installed with npm, with `effect` pinned, into a temporary project under the
 * system's temporary folder (outside the workspace, so nothing resolves through it). There:
 * plain ESM JavaScript drives the Promise facade over memory and SQLite, a strict TypeScript
 * file type-checks under `node16` and `bundler` resolution, npm finds exactly one copy of
 * `effect`, and the Effect quickstart runs.
 *
 * better-sqlite3's native addon: npm installs with `--ignore-scripts`, then the addon the
 * workspace already compiled is copied in when it is the same better-sqlite3 version and it
 * loads under this Node; otherwise `npm rebuild better-sqlite3` compiles it (about two minutes on
 * two cores, hence the generous timeouts).
 */
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import ts from "typescript"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pack, root, run } from "./pack.js"

/** The effect version the consumer pins (inside every package's peer range). */
const effectVersion = "3.22.4"

/** What the consumer installs from the registry besides the tarballs. */
const registry = [
  `effect@${effectVersion}`,
  "@effect/platform@0.97.2",
  "@effect/platform-node@0.108.2",
  "typescript@5.9.3",
  "@types/node@20",
]

const published = ["packages/core", "packages/memory", "packages/sqlite", "packages/http", "packages/server"]

const work = mkdtempSync(join(tmpdir(), "creditlock-consumer-"))
const app = join(work, "app")

/** npm's environment: this process's, without the npm_* settings pnpm exports to scripts. */
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))
const npm = (args: ReadonlyArray<string>) => run("npm", args, app, { env, timeout: 200_000 })
const node = (args: ReadonlyArray<string>) => run(process.execPath, args, app, { env, timeout: 60_000 })

/** Loads better-sqlite3 in the consumer project; undefined when it works, else why not. */
const sqliteLoadError = (): string | undefined => {
  try {
    node(["-e", "const D = require('better-sqlite3'); new D(':memory:').prepare('select 1').get()"])
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

const version = (packageJson: string): string =>
  (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version

beforeAll(() => {
  if (!relative(root, work).startsWith("..")) throw new Error(`${work} is inside the repository`)
  const tarballs = published.map((folder) => pack(folder, work))
  mkdirSync(app)
  cpSync(join(root, "release", "consumer"), app, { recursive: true })
  // The README's Effect quickstart itself: type-checked as TypeScript, and run as the JavaScript
  // TypeScript emits for it (types erased), so the consumer runs exactly what users copy.
  const quickstart = readFileSync(join(root, "examples", "quickstart-effect.ts"), "utf8")
  writeFileSync(join(app, "quickstart.ts"), quickstart)
  writeFileSync(
    join(app, "quickstart.mjs"),
    ts.transpileModule(quickstart, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText,
  )
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2),
  )
  npm(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", ...tarballs, ...registry])

  const installed = join(app, "node_modules", "better-sqlite3")
  const workspaceCopy = dirname(
    realpathSync(
      createRequire(join(root, "packages", "sqlite", "package.json")).resolve("better-sqlite3/package.json"),
    ),
  )
  const addon = join("build", "Release", "better_sqlite3.node")
  if (
    existsSync(join(workspaceCopy, addon)) &&
    version(join(workspaceCopy, "package.json")) === version(join(installed, "package.json"))
  ) {
    mkdirSync(join(installed, "build", "Release"), { recursive: true })
    copyFileSync(join(workspaceCopy, addon), join(installed, addon))
  }
  if (sqliteLoadError() !== undefined) npm(["rebuild", "better-sqlite3"])
  const still = sqliteLoadError()
  if (still !== undefined) throw new Error(`better-sqlite3 does not load in the consumer project:\n${still}`)
}, 240_000)

afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Run {
  readonly created: boolean
  readonly balanceGroupId: string | null
  readonly lockKeyType: string
  readonly replayed: ReadonlyArray<boolean>
  readonly sameEntry: boolean
  readonly refused: { readonly status: number; readonly code: string } | null
  readonly credit: ReadonlyArray<{ readonly currencyCode: string; readonly value: number }>
  readonly verified: boolean
  readonly entries: number
}

const parse = <A>(stdout: string): A => {
  try {
    return JSON.parse(stdout) as A
  } catch {
    throw new Error(`expected one JSON line on stdout, got:\n${stdout}`)
  }
}

describe("a consumer installing the packed tarballs with npm", { timeout: 240_000 }, () => {
  it("runs the Promise facade over memory and SQLite from plain ESM JavaScript", () => {
    const out = parse<{
      memory: Run
      sqlite: Run
      reopened: ReadonlyArray<number>
      http: ReadonlyArray<string>
    }>(node(["app.mjs", join(app, "data", "credit.sqlite")]))
    const expected: Run = {
      created: true,
      balanceGroupId: "bg-1001",
      lockKeyType: "string",
      replayed: [false, true],
      sameEntry: true,
      refused: { status: 422, code: "INSUFFICIENT_CREDIT" },
      credit: [{ currencyCode: "GBP", value: 2_500 }],
      verified: true,
      entries: 2,
    }
    expect(out.memory, "over MemoryStorage").toEqual(expected)
    expect(out.sqlite, "over SqliteStorage").toEqual(expected)
    expect(out.reopened, "a second engine on the same SQLite file").toEqual([2_500])
    expect(existsSync(join(app, "data", "credit.sqlite"))).toBe(true)
    expect(out.http, "@creditlock/http loads").toEqual(expect.arrayContaining(["Api", "Client", "Server"]))
  })

  for (const config of ["tsconfig.node16.json", "tsconfig.bundler.json"]) {
    it(`type-checks a strict TypeScript consumer (${config})`, () => {
      run(join(app, "node_modules", ".bin", "tsc"), ["-p", config], app, { env, timeout: 120_000 })
    })
  }

  it(`installs exactly one copy of effect (${effectVersion})`, () => {
    const copies = npm(["ls", "effect", "--all", "--parseable"]).split("\n").filter(Boolean)
    expect(copies, "npm ls effect --all --parseable").toEqual([join(app, "node_modules", "effect")])
    expect(version(join(app, "node_modules", "effect", "package.json"))).toBe(effectVersion)
    const tree = npm(["ls", "effect", "--all", "--json"])
    const versions = new Set([...tree.matchAll(/"effect":\s*\{\s*"version":\s*"([^"]+)"/g)].map((m) => m[1]))
    expect([...versions], "the effect versions in npm ls --json").toEqual([effectVersion])
  })

  it("runs the Effect quickstart", () => {
    const printed = node(["quickstart.mjs"])
    expect(printed).toMatch(/^GBP credit: 1300 pence \(journal entry [0-9a-f-]{36}\)$/m)
    expect(printed).toContain("journal verified: true")
  })
})
