/**
 * Consumers outside the repository. The published packages are packed as `pnpm publish` packs
 * them, then installed with npm, with `effect` pinned, into temporary projects under the system's
 * temporary folder (outside the workspace, so nothing resolves through it):
 *
 * - one on the effect version the workspace develops with, holding every package: plain ESM
 *   JavaScript drives the Promise facade over memory, SQLite, Redis and PostgreSQL, a strict TypeScript file
 *   type-checks under `node16` and `bundler` resolution, npm finds exactly one copy of `effect`,
 *   the Effect quickstart runs, the HTTP packages load, and `createCreditHandler` serves real
 *   requests in Express 5 and Express 4 (from the registry) behind `express.json()`;
 * - one on the lowest effect minor that the core, memory, SQLite, Redis and PostgreSQL packages accept
 *   (their peer range starts there; the HTTP packages need what @effect/platform needs): the same
 *   script, type-check, single copy and quickstart.
 *
 * better-sqlite3's native addon: npm installs with `--ignore-scripts`, then the addon the
 * workspace already compiled is copied in when it is the same better-sqlite3 version and it
 * loads under this Node; otherwise `npm rebuild better-sqlite3` compiles it (about two minutes on
 * two cores, hence the generous timeouts).
 */

import { spawn } from "node:child_process"
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
import { type Database, freshDatabase } from "@creditlock/test-suite/postgres-server"
import { type RedisServer, startServer } from "@creditlock/test-suite/redis-server"
import ts from "typescript"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pack, root, run } from "./pack.js"

/** The effect version the main consumer pins: the one the workspace develops with. */
const effectVersion = "3.22.4"

/** The lowest effect the core, memory, SQLite, Redis and PostgreSQL packages accept (their peer range's floor). */
const lowestEffectVersion = "3.21.0"

/** What the main consumer installs from the registry besides the tarballs. */
const registry = [
  `effect@${effectVersion}`,
  "@effect/platform@0.97.2",
  "@effect/platform-node@0.108.2",
  "typescript@5.9.3",
  "@types/node@20",
  "express@5",
  "express4@npm:express@4",
]

const published = [
  "packages/core",
  "packages/memory",
  "packages/sqlite",
  "packages/redis",
  "packages/postgres",
  "packages/http",
  "packages/server",
]

/** The packages whose effect peer range reaches down to {@link lowestEffectVersion}. */
const lowestPublished = ["packages/core", "packages/memory", "packages/sqlite", "packages/redis", "packages/postgres"]

const work = mkdtempSync(join(tmpdir(), "creditlock-consumer-"))
const tarballs = new Map<string, string>()
let redis: RedisServer | undefined
let database: Database | undefined

/** npm's environment: this process's, without the npm_* settings pnpm exports to scripts. */
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))

const version = (packageJson: string): string =>
  (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version

/** A consumer project: its folder, and npm and node run there. */
interface Project {
  readonly dir: string
  readonly npm: (args: ReadonlyArray<string>) => Promise<string>
  readonly node: (args: ReadonlyArray<string>) => Promise<string>
}

const project = (name: string): Project => {
  const dir = join(work, name)
  return {
    dir,
    npm: (args) => run("npm", args, dir, { env, timeout: 200_000 }),
    node: (args) => run(process.execPath, args, dir, { env, timeout: 60_000 }),
  }
}

/** Loads better-sqlite3 in the project; undefined when it works, else why not. */
const sqliteLoadError = async ({ node }: Project): Promise<string | undefined> => {
  try {
    await node(["-e", "const D = require('better-sqlite3'); new D(':memory:').prepare('select 1').get()"])
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

/**
 * Creates the project from release/consumer with the README's Effect quickstart, installs the
 * packed `packages` and the `dependencies` from the registry, and makes better-sqlite3 load.
 */
const install = async (p: Project, packages: ReadonlyArray<string>, dependencies: ReadonlyArray<string>) => {
  mkdirSync(p.dir)
  cpSync(join(root, "release", "consumer"), p.dir, { recursive: true })
  // The README's Effect quickstart itself: type-checked as TypeScript, and run as the JavaScript
  // TypeScript emits for it (types erased), so the consumer runs exactly what users copy.
  const quickstart = readFileSync(join(root, "examples", "quickstart-effect.ts"), "utf8")
  writeFileSync(join(p.dir, "quickstart.ts"), quickstart)
  writeFileSync(
    join(p.dir, "quickstart.mjs"),
    ts.transpileModule(quickstart, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText,
  )
  writeFileSync(
    join(p.dir, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2),
  )
  const packed = packages.map((folder) => {
    const tarball = tarballs.get(folder)
    if (tarball === undefined) throw new Error(`${folder} was not packed`)
    return tarball
  })
  await p.npm(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", ...packed, ...dependencies])

  const installed = join(p.dir, "node_modules", "better-sqlite3")
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
  if ((await sqliteLoadError(p)) !== undefined) await p.npm(["rebuild", "better-sqlite3"])
  const still = await sqliteLoadError(p)
  if (still !== undefined) throw new Error(`better-sqlite3 does not load in the consumer project:\n${still}`)
}

beforeAll(async () => {
  if (!relative(root, work).startsWith("..")) throw new Error(`${work} is inside the repository`)
  for (const folder of published) tarballs.set(folder, await pack(folder, work))
  redis = await startServer()
  database = await freshDatabase()
}, 240_000)

afterAll(async () => {
  await redis?.stop()
  await database?.drop()
  rmSync(work, { recursive: true, force: true })
})

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

/** What release/consumer/app.mjs must print for each adapter. */
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

/** Runs app.mjs in `p` over memory, a fresh SQLite file and Redis database `db` (one per project). */
const checkFacade = async (p: Project, db: number) => {
  if (redis === undefined) throw new Error("redis-server did not start")
  if (database === undefined) throw new Error("no PostgreSQL database was created")
  const out = parse<{
    memory: Run
    sqlite: Run
    reopened: ReadonlyArray<number>
    redis: Run | null
    postgres: Run | null
  }>(
    await p.node([
      "app.mjs",
      join(p.dir, "data", "credit.sqlite"),
      `${redis.url}/${db}`,
      database.url,
      // One schema per project: both run the same holder.
      `consumer_${db}`,
    ]),
  )
  expect(out.memory, "over MemoryStorage").toEqual(expected)
  expect(out.sqlite, "over SqliteStorage").toEqual(expected)
  expect(out.reopened, "a second engine on the same SQLite file").toEqual([2_500])
  expect(existsSync(join(p.dir, "data", "credit.sqlite"))).toBe(true)
  expect(out.redis, "over RedisStorage").toEqual(expected)
  expect(out.postgres, "over PostgresStorage").toEqual(expected)
}

const checkTypes = (p: Project, config: string) =>
  run(join(p.dir, "node_modules", ".bin", "tsc"), ["-p", config], p.dir, { env, timeout: 120_000 })

const checkOneEffect = async (p: Project, pinned: string) => {
  const copies = (await p.npm(["ls", "effect", "--all", "--parseable"])).split("\n").filter(Boolean)
  expect(copies, "npm ls effect --all --parseable").toEqual([join(p.dir, "node_modules", "effect")])
  expect(version(join(p.dir, "node_modules", "effect", "package.json"))).toBe(pinned)
  const tree = await p.npm(["ls", "effect", "--all", "--json"])
  const versions = new Set([...tree.matchAll(/"effect":\s*\{\s*"version":\s*"([^"]+)"/g)].map((m) => m[1]))
  expect([...versions], "the effect versions in npm ls --json").toEqual([pinned])
}

const checkQuickstart = async (p: Project) => {
  const printed = await p.node(["quickstart.mjs"])
  expect(printed).toMatch(/^GBP credit: 1300 pence \(journal entry [0-9a-f-]{36}\)$/m)
  expect(printed).toContain("journal verified: true")
}

describe("a consumer installing the packed tarballs with npm", { timeout: 240_000 }, () => {
  const app = project("app")
  beforeAll(() => install(app, published, registry), 240_000)

  it("runs the Promise facade over memory, SQLite, Redis and PostgreSQL from plain ESM JavaScript", () =>
    checkFacade(app, 1))

  for (const config of [
    "tsconfig.node16.json",
    "tsconfig.bundler.json",
    "tsconfig.http-node16.json",
    "tsconfig.http-bundler.json",
  ]) {
    it(`type-checks a strict TypeScript consumer (${config})`, async () => {
      await checkTypes(app, config)
    })
  }

  it(`installs exactly one copy of effect (${effectVersion})`, () => checkOneEffect(app, effectVersion))

  it("runs the Effect quickstart", () => checkQuickstart(app))

  it("loads from CommonJS with import(), and refuses require() with a clear error", async () => {
    const cjs = `
      const { createCreditEngine } = await import("@creditlock/core")
      const { MemoryStorage } = await import("@creditlock/memory")
      const credit = createCreditEngine({ storage: MemoryStorage.layer() })
      const holder = { customerId: "c", holderType: "customers", holderId: "c" }
      const opened = await credit.openHolder(holder)
      await credit.close()
      let required = null
      try { require("@creditlock/core") } catch (error) { required = error.code }
      console.log(JSON.stringify({ type: typeof exports, created: opened.created, required }))`
    const out = parse<{ type: string; created: boolean; required: string | null }>(
      await app.node(["--input-type=commonjs", "-e", `(async () => { ${cjs} })()`]),
    )
    expect(out).toEqual({ type: "object", created: true, required: "ERR_PACKAGE_PATH_NOT_EXPORTED" })
  })

  it("runs the creditlock bin: help, and serve over SQLite answering /healthz and an authenticated GET", async () => {
    const bin = join(app.dir, "node_modules", ".bin", "creditlock")
    expect(await run(bin, ["help"], app.dir, { env, timeout: 30_000 })).toContain("Usage: creditlock [serve]")
    const server = spawn(bin, ["serve"], {
      cwd: app.dir,
      env: {
        ...env,
        PORT: "0",
        CREDIT_STORE: `sqlite:${join(app.dir, "data", "server.sqlite")}`,
        CREDIT_CREDENTIALS: JSON.stringify([{ token: "bin-admin-token", customers: ["*"] }]),
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    try {
      let output = ""
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 30_000)
        const read = (chunk: Buffer) => {
          output += chunk.toString()
          const found = /listening on (http:\/\/\S+)/.exec(output)?.[1]
          if (found !== undefined) {
            clearTimeout(timer)
            resolve(found)
          }
        }
        server.stdout.on("data", read)
        server.stderr.on("data", read)
        server.once("exit", (code) => reject(new Error(`the server exited (${code}):\n${output}`)))
      })
      expect((await fetch(`${url}/healthz`)).status).toBe(200)
      const missing = await fetch(`${url}/credit/v1/customers/c/contracts/s`, {
        headers: { authorization: "Bearer bin-admin-token" },
      })
      expect(missing.status, "an authenticated read of a holder never opened").toBe(404)
    } finally {
      const exited = new Promise((resolve) => server.once("exit", (code, signal) => resolve({ code, signal })))
      server.kill("SIGTERM")
      expect(await exited, "the bin's exit on SIGTERM").toEqual({ code: 0, signal: null })
    }
  })

  it("runs the server as the container guidance says: the dist bin in exec form, HOST=0.0.0.0, data on a volume, the HEALTHCHECK", async () => {
    // The guidance, read from the server's README, so that the test runs what it says.
    const guide = readFileSync(join(root, "packages", "server", "README.md"), "utf8")
    const execForm = /`\["node", "(node_modules\/@creditlock\/server\/dist\/src\/bin\.js)", "serve"\]`/.exec(guide)?.[1]
    const healthcheck = /`node -e "(fetch\('http:\/\/127\.0\.0\.1:8080\/readyz'\)[^"]+)"`/.exec(guide)?.[1]
    expect(execForm, "the README's exec-form CMD").toBeDefined()
    expect(healthcheck, "the README's HEALTHCHECK").toBeDefined()
    const probe = (port: number) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ["-e", (healthcheck as string).replace(":8080/", `:${port}/`)], {
          cwd: app.dir,
          env,
          stdio: "ignore",
        })
        child.once("exit", (code) => resolve(code))
      })
    const volume = join(app.dir, "volume")
    const serve = () => {
      const server = spawn(process.execPath, [execForm as string, "serve"], {
        cwd: app.dir,
        env: {
          ...env,
          HOST: "0.0.0.0",
          PORT: "0",
          CREDIT_STORE: `sqlite:${join(volume, "creditlock.sqlite")}`,
          CREDIT_CREDENTIALS: JSON.stringify([{ token: "container-admin-token", customers: ["*"] }]),
          CREDIT_LOCK_KEY_SECRET: "container-lock-key-secret-0123456789abcdef",
        },
        stdio: ["ignore", "pipe", "pipe"],
      })
      let output = ""
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        server.once("exit", (code, signal) => resolve({ code, signal })),
      )
      const listening = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 30_000)
        const read = (chunk: Buffer) => {
          output += chunk.toString()
          const port = /listening on http:\/\/0\.0\.0\.0:(\d+)/.exec(output)?.[1]
          if (port !== undefined) {
            clearTimeout(timer)
            resolve(Number(port))
          }
        }
        server.stdout.on("data", read)
        server.stderr.on("data", read)
        void exited.then(({ code }) => {
          clearTimeout(timer)
          reject(new Error(`the server exited (${code}):\n${output}`))
        })
      })
      return { server, exited, listening, output: () => output }
    }
    const holder = (port: number) => `http://127.0.0.1:${port}/credit/v1/customers/c/contracts/vol`
    const auth = { authorization: "Bearer container-admin-token" }

    const first = serve()
    let port = 0
    try {
      port = await first.listening
      expect(await probe(port), "the HEALTHCHECK on a ready server").toBe(0)
      expect((await fetch(holder(port), { method: "PUT", headers: auth })).status).toBe(201)
    } finally {
      first.server.kill("SIGTERM")
    }
    expect(await first.exited, first.output()).toEqual({ code: 0, signal: null })
    expect(await probe(port), "the HEALTHCHECK once the server is gone").toBe(1)
    expect(existsSync(join(volume, "creditlock.sqlite"))).toBe(true)

    // A new container on the same volume finds the data.
    const second = serve()
    try {
      const again = await second.listening
      expect((await fetch(holder(again), { headers: auth })).status).toBe(200)
    } finally {
      second.server.kill("SIGTERM")
    }
    expect(await second.exited, second.output()).toEqual({ code: 0, signal: null })
  })

  it("loads the HTTP API and the server packages", async () => {
    const names = parse<{ http: ReadonlyArray<string>; server: ReadonlyArray<string> }>(
      await app.node([
        "--input-type=module",
        "-e",
        `const http = await import("@creditlock/http"); const server = await import("@creditlock/server");
         console.log(JSON.stringify({ http: Object.keys(http).sort(), server: Object.keys(server).sort() }))`,
      ]),
    )
    expect(names.http).toEqual(expect.arrayContaining(["Api", "Client", "Server"]))
    expect(names.server.length).toBeGreaterThan(0)
  })

  for (const [name, major] of [
    ["express", 5],
    ["express4", 4],
  ] as const) {
    it(`mounts createCreditHandler in Express ${major} behind express.json() from plain ESM JavaScript`, async () => {
      const out = parse<Record<string, unknown>>(await app.node(["express.mjs", name]))
      expect(out).toEqual({
        express: major,
        refused: { status: 400, code: "INVALID_REQUEST", namesField: true },
        opened: { status: 201, balanceGroupId: "bg-1001" },
        locked: { status: 201, keyType: "string" },
        modified: { status: 200, credit: [{ currencyCode: "GBP", value: 2_500 }] },
        replayed: true,
        read: { status: 200, credit: [{ currencyCode: "GBP", value: 2_500 }] },
        byBalanceGroup: { status: 200, holder: { type: "contract", id: "sub_42" } },
        app: { status: 200, text: "app ok" },
      })
    })
  }
})

describe(`a consumer on effect ${lowestEffectVersion}, the floor of the adapters' peer range`, {
  timeout: 240_000,
}, () => {
  const lowest = project("lowest")
  beforeAll(
    () => install(lowest, lowestPublished, [`effect@${lowestEffectVersion}`, "typescript@5.9.3", "@types/node@20"]),
    240_000,
  )

  it("runs the Promise facade over memory, SQLite, Redis and PostgreSQL", () => checkFacade(lowest, 2))

  for (const config of ["tsconfig.node16.json", "tsconfig.bundler.json"]) {
    it(`type-checks the strict TypeScript consumer (${config})`, async () => {
      await checkTypes(lowest, config)
    })
  }

  it(`installs exactly one copy of effect (${lowestEffectVersion})`, () => checkOneEffect(lowest, lowestEffectVersion))

  it("runs the Effect quickstart", () => checkQuickstart(lowest))
})
