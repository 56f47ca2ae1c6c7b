/**
 * Every fenced code block of the repository's READMEs (`README.md`, `packages/*\/README.md` and
 * the READMEs of `test/`, `release/`, `bench/` and `examples/` when they exist) runs as written.
 * The blocks are copied, unchanged, into fresh folders under `examples/node_modules/.docs/`, where
 * Node resolves `@creditlock/*`, `effect`, `better-sqlite3`, `ioredis` and `express` through this package's
 * dependencies (node_modules is ignored by git and Biome, and the folder is removed afterwards).
 *
 * - ```js / ```javascript: `node --check` on this Node (20 in CI) proves the block is plain
 *   JavaScript — no TypeScript, no syntax Node does not parse, such as `await using` on Node 20 —
 *   then `node --import tsx` runs it as an ES module (`.mjs`). The loader is there only because
 *   the workspace packages export their TypeScript sources in development; the JavaScript the
 *   packages publish is run by `release/test/consumer.test.ts`.
 * - ```ts / ```typescript: one `tsc --noEmit` over all of them with `tsconfig.base.json`'s
 *   settings (strict, `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`,
 *   `verbatimModuleSyntax`, target and lib ES2022), except `noUnusedLocals`/`noUnusedParameters`
 *   (a snippet declares values the reader goes on to use) and with `moduleDetection: "force"`;
 *   then each runs with `node --import tsx`, or, when it imports `vitest`, `@effect/vitest` or
 *   `@creditlock/test-suite`, with `vitest run` as a test file. Blocks with identical code run once.
 * - A ```text block right after a js or ts block is that block's whole stdout.
 * - ```sh / ```bash: install commands (`npm install …`, `pnpm add …`, `pnpm install`) are not run;
 *   each package they name must be a published workspace package or a dependency or peer of one.
 *   A `pnpm start` block (the first terminal) is run by the test from the repository root, in its
 *   own process group, with `PORT=0` (a free loopback port) and
 *   `CREDIT_STORE=sqlite:<temp>/data/creditlock.sqlite` in its environment (the README's own
 *   assignments win); the URL it prints gives the port. A ```text block right after it is what
 *   the server prints (consecutive lines of its stdout). Every other command of the README's sh
 *   blocks (the second terminal) runs in one `bash` with `set -eu -o pipefail`, in order, in a
 *   fresh folder, with `127.0.0.1:8080` replaced by the server's address — the only change to the
 *   text. The script also defines `curl` as a function that calls the real curl with `-D` (the
 *   response headers to a file, which leaves stdout untouched) to record each request's status.
 *   A full-line comment `# <status>` or `# <status> <output>` right after a command is what it
 *   shows: the status of the one request it makes and its stdout; a ```json block right after the
 *   sh block is the stdout of the block's last command. A command without such a comment must
 *   print nothing, and its requests must answer 2xx. The server is stopped by its process group
 *   id at the end.
 * - ```json: a shown response (above) is compared structurally; any other must parse.
 * - Outputs compare JSON structurally (same keys, same array lengths, same values) and text line
 *   by line; `"…"` stands for any value and `…` inside a string for any characters: they mark
 *   values that differ on every run (ids, keys, instants, paths).
 * - A block preceded by `<!-- not run: reason -->` is not run; the test lists them and asserts
 *   their exact number, as it does for ```text blocks shown without anything to compare them to.
 *
 * Prerequisites: `bash`, `curl` and `jq` (`apt-get install curl jq`).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { type Database, freshDatabase } from "@creditlock/test-suite/postgres-server"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = resolve(import.meta.dirname, "..")

/** The READMEs whose blocks run. */
const readmes = [
  "README.md",
  ...readdirSync(join(root, "packages"))
    .sort()
    .map((dir) => `packages/${dir}/README.md`),
  "test/README.md",
  "release/README.md",
  "bench/README.md",
  "examples/README.md",
].filter((path) => existsSync(join(root, path)))

/** Blocks marked `<!-- not run: … -->`, by README and first line: the list cannot grow silently. */
const expectedNotRun = [
  [
    "README.md",
    "pnpm install && pnpm start   # the HTTP server on 127.0.0.1:8080 (SQLite store in ./data), prints an admin token",
  ],
  ["packages/server/README.md", "npx creditlock serve        # or just `npx creditlock`"],
]

/** ```text blocks that show an output no block of the README produces, by README and first line. */
const expectedShownOnly = [
  [
    "packages/server/README.md",
    "creditlock: CREDIT_STORE sqlite:… needs the package @creditlock/sqlite, which is not installed. Install it next to @creditlock/server (npm install @creditlock/sqlite, or pnpm add @creditlock/sqlite), or choose another CREDIT_STORE (memory: needs nothing more).",
  ],
  ["packages/server/README.md", "$ CREDIT_STORE=memory: npx creditlock serve"],
]

type Lang = "js" | "ts" | "sh" | "json" | "text"

const languages: Record<string, Lang> = {
  js: "js",
  javascript: "js",
  mjs: "js",
  ts: "ts",
  typescript: "ts",
  sh: "sh",
  bash: "sh",
  shell: "sh",
  json: "json",
  text: "text",
}

interface Block {
  readonly readme: string
  /** 1-based line of the opening fence. */
  readonly line: number
  readonly lang: Lang
  readonly code: string
  readonly notRun: string | undefined
  /** The block right before this one, when only blank lines separate them. */
  readonly previous: Block | undefined
}

const where = (block: Block) => `${block.readme}:${block.line}`
const firstLine = (block: Block) => block.code.split("\n")[0] ?? ""

/** The fenced blocks of one README; an unknown or missing language fails. */
const parseBlocks = (readme: string): ReadonlyArray<Block> => {
  const lines = readFileSync(join(root, readme), "utf8").split("\n")
  const blocks: Array<Block> = []
  let i = 0
  let lastEnd = -2
  while (i < lines.length) {
    if (/^\s*~{3,}/.test(lines[i] ?? "")) throw new Error(`${readme}:${i + 1}: fence code blocks with backticks`)
    const open = /^(\s*)(`{3,})\s*([^`\s]*)\s*$/.exec(lines[i] ?? "")
    if (open === null) {
      i++
      continue
    }
    const [, indent = "", fence = "", info = ""] = open
    const lang = languages[info.toLowerCase()]
    if (lang === undefined) throw new Error(`${readme}:${i + 1}: a code block needs a known language, got "${info}"`)
    let j = i + 1
    const body: Array<string> = []
    while (j < lines.length && !new RegExp(`^\\s*${fence}\\s*$`).test(lines[j] ?? "")) {
      const text = lines[j] ?? ""
      body.push(text.startsWith(indent) ? text.slice(indent.length) : text.trimStart())
      j++
    }
    if (j >= lines.length) throw new Error(`${readme}:${i + 1}: the code block is never closed`)
    let k = i - 1
    while (k >= 0 && (lines[k] ?? "").trim() === "") k--
    const marker = /^\s*<!--\s*not run:\s*(.+?)\s*-->\s*$/.exec(lines[k] ?? "")
    const adjacent = blocks.at(-1)
    blocks.push({
      readme,
      line: i + 1,
      lang,
      code: body.join("\n"),
      notRun: marker?.[1],
      previous: adjacent !== undefined && k === lastEnd ? adjacent : undefined,
    })
    lastEnd = j
    i = j + 1
  }
  return blocks
}

// ---------------------------------------------------------------------------------------------
// Shell: commands, their shown outputs, and placeholders

interface Command {
  /** The command's lines as written (with any trailing comment). */
  readonly text: string
  /** The command without trailing comments. */
  readonly code: string
  /** The full-line comments right after it. */
  readonly comments: Array<string>
}

/** Splits a block into commands (quotes and `\` continuations may span lines) and their comments. */
const parseCommands = (code: string): Array<Command> => {
  const commands: Array<Command> = []
  let text: Array<string> = []
  let bare: Array<string> = []
  let single = false
  let double = false
  let attach: Command | undefined
  for (const line of code.split("\n")) {
    if (text.length === 0) {
      if (line.trim() === "") {
        attach = undefined
        continue
      }
      if (line.trimStart().startsWith("#")) {
        attach?.comments.push(line.trim())
        continue
      }
    }
    let kept = ""
    let continued = false
    for (let c = 0; c < line.length; c++) {
      const ch = line[c] ?? ""
      if (single) {
        if (ch === "'") single = false
      } else if (ch === "\\") {
        if (c === line.length - 1) {
          continued = true
          break
        }
        kept += ch
        c++
        kept += line[c] ?? ""
        continue
      } else if (double) {
        if (ch === '"') double = false
      } else if (ch === "'") single = true
      else if (ch === '"') double = true
      else if (ch === "#" && (c === 0 || /\s/.test(line[c - 1] ?? ""))) break
      kept += ch
    }
    text.push(line)
    bare.push(continued ? `${kept}\\` : kept)
    if (!single && !double && !continued) {
      const command: Command = { text: text.join("\n"), code: bare.join("\n").trim(), comments: [] }
      commands.push(command)
      attach = command
      text = []
      bare = []
    }
  }
  if (text.length > 0) throw new Error(`unterminated command: ${text.join("\n")}`)
  return commands
}

const installPattern = /^(?:npm\s+(?:install|i|add)|pnpm\s+(?:add|install|i))(?:\s|$)/
const startPattern = /^((?:[A-Za-z_]\w*=(?:'[^']*'|"[^"]*"|\S)*\s+)*)pnpm\s+start(?:\s|$)/

/** What a command shows: `# <status>` or `# <status> <output>`. */
interface Shown {
  readonly status: number
  output: string | undefined
}

const shownBy = (command: Command): Shown | undefined => {
  const match = /^#\s+(\d{3})(?:\s+(.*))?$/.exec(command.comments[0] ?? "")
  return match === null ? undefined : { status: Number(match[1]), output: match[2] }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** `…` in expected text stands for any characters. */
const textMatches = (expected: string, actual: string): boolean =>
  expected === "…" || new RegExp(`^${expected.split("…").map(escapeRegExp).join("[\\s\\S]*")}$`).test(actual)

/** Structural comparison: `"…"` is any value, `…` in a string any characters. */
const jsonMatches = (expected: unknown, actual: unknown): boolean => {
  if (expected === "…") return true
  if (typeof expected === "string") return typeof actual === "string" && textMatches(expected, actual)
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => jsonMatches(e, actual[i]))
    )
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false
    const e = expected as Record<string, unknown>
    const a = actual as Record<string, unknown>
    const keys = Object.keys(e).sort()
    return keys.join("\n") === Object.keys(a).sort().join("\n") && keys.every((key) => jsonMatches(e[key], a[key]))
  }
  return Object.is(expected, actual)
}

const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

/** Whether `actual` output matches the shown one: as JSON when the shown one is JSON, else as text. */
const outputMatches = (expected: string, actual: string): boolean => {
  const shown = parseJson(expected)
  if (shown.ok && expected.trim() !== "…") {
    const got = parseJson(actual)
    return got.ok && jsonMatches(shown.value, got.value)
  }
  const e = expected.trim().split("\n")
  const a = actual.trim().split("\n")
  return e.length === a.length && e.every((line, i) => textMatches(line.trimEnd(), (a[i] ?? "").trimEnd()))
}

/** Whether every line of `expected` matches consecutive lines of `actual`. */
const linesAppearIn = (expected: string, actual: string): boolean => {
  const e = expected.trim().split("\n")
  const a = actual.split("\n").map((line) => line.trimEnd())
  return a.some((_, start) => e.every((line, i) => textMatches(line.trimEnd(), a[start + i] ?? "")))
}

// ---------------------------------------------------------------------------------------------
// The workspace: package names an install command may name

const workspacePackages = ["packages", "test", "examples", "bench", "release"].flatMap((dir) =>
  dir === "packages"
    ? readdirSync(join(root, dir)).map((name) => join(root, dir, name, "package.json"))
    : [join(root, dir, "package.json")],
)

interface Manifest {
  readonly name: string
  readonly private?: boolean
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
}

const installable = new Set(
  workspacePackages
    .filter((path) => existsSync(path))
    .map((path) => JSON.parse(readFileSync(path, "utf8")) as Manifest)
    .filter((manifest) => manifest.private !== true)
    .flatMap((manifest) => [
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]),
)

/** The package names an install command names (flags and version ranges dropped). */
const installedNames = (code: string): Array<string> =>
  code
    .replace(installPattern, "")
    .split(/\s+/)
    .filter((word) => word !== "" && !word.startsWith("-"))
    .map((word) => word.replace(/(.)@.*$/, "$1"))

// ---------------------------------------------------------------------------------------------
// Running

/** The environment of every child: this one's without vitest's and npm's settings. */
const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(VITEST|npm_|NODE_OPTIONS$|HOST$|PORT$|CREDIT_)/i.test(name) && name !== "TEST",
    ),
  )
  return { ...env, ...extra }
}

const examplesModules = join(root, "examples", "node_modules")
mkdirSync(join(examplesModules, ".docs"), { recursive: true })
const work = mkdtempSync(join(examplesModules, ".docs", "run-"))
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
const vitestBin = join(examplesModules, "vitest", "vitest.mjs")

/** A folder name that says where the block is: `packages-http-README.md-L274`. */
const slug = (block: Block) => `${block.readme.replaceAll("/", "-")}-L${block.line}`

interface Result {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `file` to its end and gives its status and output. It never blocks this process: vitest's
 * worker keeps answering, and a server's output keeps flowing meanwhile.
 */
const exec = (file: string, args: ReadonlyArray<string>, cwd: string, timeout = 120_000): Promise<Result> =>
  new Promise((done, fail) => {
    const child = spawn(file, args, { cwd, env: childEnv(), stdio: ["ignore", "pipe", "pipe"], timeout })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.once("error", fail)
    child.once("close", (status) => done({ status, stdout, stderr }))
  })

const describeRun = (what: string, r: Result) =>
  `${what} exited with ${r.status}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`

const requireTool = (name: string, install: string) => {
  const r = spawnSync("bash", ["-c", `command -v ${name}`], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`the README walk-throughs need ${name}: install it (${install})`)
}

/** A `pnpm start` server in its own process group. */
interface RunningServer {
  readonly child: ChildProcess
  readonly url: string
  output: () => string
}

const servers = new Set<ChildProcess>()

const stopServer = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise<void>((done) => child.once("exit", () => done()))
  process.kill(-child.pid, "SIGTERM")
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL")
  }, 10_000)
  await exited
  clearTimeout(timer)
  servers.delete(child)
}

const startServer = (script: string, dir: string): Promise<RunningServer> =>
  new Promise((done, fail) => {
    const child = spawn("bash", ["-c", script], {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: childEnv({ PORT: "0", CREDIT_STORE: `sqlite:${join(dir, "data", "creditlock.sqlite")}` }),
    })
    servers.add(child)
    let stdout = ""
    let stderr = ""
    const output = () => `${stdout}${stderr === "" ? "" : `\n--- stderr ---\n${stderr}`}`
    const timer = setTimeout(() => fail(new Error(`the server did not listen within 60 s:\n${output()}`)), 60_000)
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
      const url = /creditlock listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1]
      if (url !== undefined) {
        clearTimeout(timer)
        done({ child, url, output: () => stdout })
      }
    })
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      fail(new Error(`the server exited (${code ?? signal}) before listening:\n${output()}`))
    })
  })

/** The prelude of a walk-through: strict bash and a `curl` that records each status. */
const prelude = (log: string) =>
  [
    "set -eu -o pipefail",
    `__docs_log=${JSON.stringify(log)}`,
    "__docs_step=0",
    "curl() {",
    "  local __docs_headers __docs_rc=0",
    "  __docs_headers=$(mktemp)",
    '  command curl -D "$__docs_headers" "$@" || __docs_rc=$?',
    `  printf '%s %s\\n' "$__docs_step" "$(awk '/^HTTP\\//{s=$2} END{print s}' "$__docs_headers")" >> "$__docs_log"`,
    '  rm -f "$__docs_headers"',
    "  return $__docs_rc",
    "}",
  ].join("\n")

// ---------------------------------------------------------------------------------------------
// The plan: every block of every README, classified

const blocks = readmes.flatMap(parseBlocks)

/** How each block is dealt with; every block ends up in exactly one of these. */
const tally = {
  jsRun: [] as Array<Block>,
  tsRun: [] as Array<Block>,
  shRun: [] as Array<Block>,
  shInstallOnly: [] as Array<Block>,
  jsonResponse: [] as Array<Block>,
  jsonParsed: [] as Array<Block>,
  textCompared: [] as Array<Block>,
  textShownOnly: [] as Array<Block>,
  notRun: [] as Array<Block>,
}

const isTestFile = (code: string) => /from\s+["'](?:vitest|@effect\/vitest|@creditlock\/test-suite)["']/.test(code)

interface Walkthrough {
  readonly readme: string
  readonly server: Block | undefined
  readonly blocks: Array<Block>
}

const walkthroughs = new Map<string, Walkthrough>()

const commandsOf = new Map<Block, Array<Command>>()
for (const block of blocks) {
  if (block.notRun !== undefined) {
    tally.notRun.push(block)
    continue
  }
  if (block.lang === "js") tally.jsRun.push(block)
  else if (block.lang === "ts") tally.tsRun.push(block)
  else if (block.lang === "sh") {
    const commands = parseCommands(block.code)
    commandsOf.set(block, commands)
    const runnable = commands.filter((c) => !installPattern.test(c.code))
    if (runnable.length === 0) {
      tally.shInstallOnly.push(block)
      continue
    }
    tally.shRun.push(block)
    const walk = walkthroughs.get(block.readme) ?? { readme: block.readme, server: undefined, blocks: [] }
    walkthroughs.set(block.readme, walk)
    if (runnable.some((c) => startPattern.test(c.code))) {
      if (walk.server !== undefined) throw new Error(`${where(block)}: a README starts one server`)
      walkthroughs.set(block.readme, { ...walk, server: block })
    } else walk.blocks.push(block)
  } else if (block.lang === "json") {
    const previous = block.previous
    if (previous?.lang === "sh" && previous.notRun === undefined && tally.shRun.includes(previous)) {
      tally.jsonResponse.push(block)
    } else tally.jsonParsed.push(block)
  } else {
    const previous = block.previous
    const compared =
      previous !== undefined &&
      previous.notRun === undefined &&
      (previous.lang === "js" ||
        previous.lang === "ts" ||
        (previous.lang === "sh" && walkthroughs.get(previous.readme)?.server === previous))
    ;(compared ? tally.textCompared : tally.textShownOnly).push(block)
  }
}

/** The ```text block right after `block`, if any. */
const textAfter = (block: Block) => blocks.find((b) => b.previous === block && b.lang === "text")

afterAll(async () => {
  await Promise.all([...servers].map(stopServer))
  rmSync(work, { recursive: true, force: true })
})

describe("README code blocks run as written", () => {
  it("scans every README and accounts for every block", () => {
    expect(readmes).toEqual(
      expect.arrayContaining([
        "README.md",
        "packages/core/README.md",
        "packages/http/README.md",
        "packages/memory/README.md",
        "packages/postgres/README.md",
        "packages/redis/README.md",
        "packages/server/README.md",
        "packages/sqlite/README.md",
        "packages/testing/README.md",
        "test/README.md",
        "release/README.md",
      ]),
    )
    const accounted = Object.values(tally).reduce((n, list) => n + list.length, 0)
    expect(accounted).toBe(blocks.length)
    expect(tally.notRun.map((b) => [b.readme, firstLine(b)])).toEqual(expectedNotRun)
    expect(tally.textShownOnly.map((b) => [b.readme, firstLine(b)])).toEqual(expectedShownOnly)
    // Each README with code has at least one block that runs or is checked.
    for (const readme of readmes) {
      const own = blocks.filter((b) => b.readme === readme)
      if (own.length > 0)
        expect(
          own.some((b) => b.notRun === undefined),
          readme,
        ).toBe(true)
    }
    expect(tally.tsRun.length).toBeGreaterThanOrEqual(10)
    expect(tally.jsRun.length).toBeGreaterThanOrEqual(1)
    expect(walkthroughs.size).toBeGreaterThanOrEqual(2)
    const counts = Object.fromEntries(Object.entries(tally).map(([kind, list]) => [kind, list.length]))
    console.log(`README blocks: ${blocks.length} in ${readmes.length} READMEs`, counts)
  })

  it("install commands name packages of the workspace or their dependencies", () => {
    const names = [...commandsOf.values()]
      .flat()
      .filter((c) => installPattern.test(c.code))
      .flatMap((c) => installedNames(c.code))
    expect(names.length).toBeGreaterThan(5)
    expect(names.filter((name) => !installable.has(name))).toEqual([])
  })

  it("JSON blocks that are not responses parse", () => {
    for (const block of tally.jsonParsed) {
      expect(parseJson(block.code).ok, where(block)).toBe(true)
    }
  })

  describe("JavaScript and TypeScript blocks", () => {
    const folders = new Map<Block, string>()
    // The PostgreSQL blocks connect to DATABASE_URL: a database of this run's own.
    let database: Database | undefined
    afterAll(async () => {
      delete process.env.DATABASE_URL
      await database?.drop()
    })
    beforeAll(async () => {
      database = await freshDatabase()
      process.env.DATABASE_URL = database.url
      writeFileSync(join(work, "package.json"), `${JSON.stringify({ type: "module", private: true })}\n`)
      for (const block of [...tally.jsRun, ...tally.tsRun]) {
        const dir = join(work, slug(block))
        mkdirSync(dir)
        const file = block.lang === "js" ? "index.mjs" : isTestFile(block.code) ? "index.test.ts" : "index.ts"
        writeFileSync(join(dir, file), `${block.code}\n`)
        folders.set(block, join(dir, file))
      }
      writeFileSync(
        join(work, "tsconfig.json"),
        JSON.stringify({
          extends: join(root, "tsconfig.base.json"),
          compilerOptions: {
            composite: false,
            declaration: false,
            declarationMap: false,
            sourceMap: false,
            incremental: false,
            noEmit: true,
            noUnusedLocals: false,
            noUnusedParameters: false,
            moduleDetection: "force",
          },
          include: ["*/index.ts", "*/index.test.ts"],
        }),
      )
      writeFileSync(
        join(work, "vitest.config.mjs"),
        'export default { test: { include: ["*/index.test.ts"], exclude: [], testTimeout: 30000 } }\n',
      )
    })

    it("js blocks are plain JavaScript for this Node", async () => {
      for (const block of tally.jsRun) {
        const r = await exec(process.execPath, ["--check", folders.get(block) ?? ""], work)
        expect(r.status, describeRun(`node --check (${where(block)})`, r)).toBe(0)
      }
    })

    it("ts blocks type-check (strict)", async () => {
      const r = await exec(process.execPath, [tsc, "-p", join(work, "tsconfig.json")], work, 120_000)
      expect(r.status, describeRun("tsc --noEmit over the README's TypeScript blocks", r)).toBe(0)
    }, 150_000)

    it("js and ts blocks run, and print what the README shows", async () => {
      const runs = [...tally.jsRun, ...tally.tsRun]
      // Blocks with the same code run once; two at a time.
      const unique = [...new Map(runs.map((block) => [`${block.lang}\n${block.code.trim()}`, block])).entries()]
      const ran = new Map<string, Result>()
      const queue = [...unique]
      const worker = async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          const [key, block] = next
          const file = folders.get(block) ?? ""
          const dir = resolve(file, "..")
          ran.set(
            key,
            await (file.endsWith(".test.ts")
              ? exec(process.execPath, [vitestBin, "run", "--root", work, "--config", "vitest.config.mjs", dir], work)
              : exec(process.execPath, ["--import", "tsx", file], dir)),
          )
        }
      }
      await Promise.all([worker(), worker()])
      for (const block of runs) {
        const r = ran.get(`${block.lang}\n${block.code.trim()}`)
        if (r === undefined) throw new Error(`${where(block)} did not run`)
        expect(r.status, describeRun(where(block), r)).toBe(0)
        if (folders.get(block)?.endsWith(".test.ts")) {
          // biome-ignore lint/suspicious/noControlCharactersInRegex: vitest colours its summary
          expect(r.stdout.replace(/\x1b\[[0-9;]*m/g, ""), where(block)).toMatch(/Tests +[1-9]\d* passed/)
        }
        const shown = textAfter(block)
        if (shown !== undefined) {
          expect(
            outputMatches(shown.code, r.stdout),
            `${where(shown)} shows what ${where(block)} prints:\n${r.stdout}`,
          ).toBe(true)
        }
      }
    }, 240_000)
  })

  describe("shell walk-throughs against `pnpm start`", () => {
    beforeAll(() => {
      requireTool("bash", "apt-get install bash")
      requireTool("curl", "apt-get install curl")
      requireTool("jq", "apt-get install jq")
    })

    for (const walk of walkthroughs.values()) {
      it(`${walk.readme}: every command answers what the README shows`, async () => {
        const dir = mkdtempSync(join(work, "walk-"))
        const steps = walk.blocks.flatMap((block) =>
          (commandsOf.get(block) ?? [])
            .filter((c) => !installPattern.test(c.code))
            .map((command, i, all) => ({ block, command, last: i === all.length - 1 })),
        )
        const usesCurl = steps.some((s) => /(^|[\s|;&(])curl\s/.test(s.command.code))
        if (walk.server === undefined) {
          expect(usesCurl, `${walk.readme}: requests need the server started in the README (\`pnpm start\`)`).toBe(
            false,
          )
        }
        let server: RunningServer | undefined
        let base = "http://127.0.0.1:8080"
        if (walk.server !== undefined) {
          const serverCommands = (commandsOf.get(walk.server) ?? []).filter((c) => !installPattern.test(c.code))
          const startAt = serverCommands.findIndex((c) => startPattern.test(c.code))
          expect(startAt, `${where(walk.server)}: nothing may follow \`pnpm start\` in its block`).toBe(
            serverCommands.length - 1,
          )
          expect(walk.server.code, `${where(walk.server)}: the test chooses the port`).not.toMatch(/\bPORT=/)
          const script = serverCommands
            .map((c) => (startPattern.test(c.code) ? c.code.replace(startPattern, "$1exec pnpm start ") : c.text))
            .join("\n")
          server = await startServer(script, dir)
          base = server.url
        }
        const here = (text: string) => text.replaceAll("http://127.0.0.1:8080", base)
        try {
          const log = join(dir, "statuses.log")
          writeFileSync(log, "")
          const script = [
            prelude(log),
            ...steps.map((s, i) => `__docs_step=${i + 1}; printf '\\036%d\\036' ${i + 1}\n${here(s.command.text)}`),
            "printf '\\036end\\036'",
          ].join("\n")
          writeFileSync(join(dir, "walkthrough.sh"), script)
          const r = await exec("bash", [join(dir, "walkthrough.sh")], dir)
          // biome-ignore lint/suspicious/noControlCharactersInRegex: the step markers are control characters no output holds
          const ranTo = r.stdout.match(/\x1e(\d+)\x1e/g)?.length ?? 0
          const failed = steps[ranTo - 1]
          expect(
            r.status,
            describeRun(
              `the walk-through (stopped at ${failed === undefined ? "the start" : `${where(failed.block)}: ${failed.command.text}`})`,
              r,
            ),
          ).toBe(0)
          // biome-ignore lint/suspicious/noControlCharactersInRegex: the step markers, as above
          const outputs = r.stdout.split(/\x1e(?:\d+|end)\x1e/).slice(1)
          const statuses = readFileSync(log, "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => line.split(" ").map(Number) as [number, number])
          let compared = 0
          steps.forEach((step, i) => {
            const what = `${where(step.block)}: ${step.command.text}`
            const output = outputs[i] ?? ""
            const answered = statuses.filter(([n]) => n === i + 1).map(([, status]) => status)
            const shown = shownBy(step.command)
            const response = step.last ? blocks.find((b) => b.previous === step.block && b.lang === "json") : undefined
            if (response !== undefined) {
              expect(shown, `${what}: the response below needs a \`# <status>\` comment`).toBeDefined()
              expect(shown?.output, `${what}: shows its output twice`).toBeUndefined()
              if (shown !== undefined) shown.output = response.code
            }
            if (shown === undefined) {
              expect(output.trim(), `${what} prints something the README does not show`).toBe("")
              expect(
                answered.filter((s) => s < 200 || s > 299),
                `${what}: requests without a shown status must succeed`,
              ).toEqual([])
              return
            }
            expect(answered, `${what}: one request, answering ${shown.status}`).toEqual([shown.status])
            const expected = here(shown.output ?? "")
            expect(outputMatches(expected, output), `${what}\nshows:\n${expected}\nprints:\n${output}`).toBe(true)
            compared++
          })
          expect(compared).toBeGreaterThan(0)
          if (server !== undefined && walk.server !== undefined) {
            const shownStart = textAfter(walk.server)
            if (shownStart !== undefined) {
              expect(
                linesAppearIn(here(shownStart.code), server.output()),
                `${where(shownStart)} shows what the server prints:\n${server.output()}`,
              ).toBe(true)
            }
          }
        } finally {
          if (server !== undefined) await stopServer(server.child)
        }
      }, 180_000)
    }
  })
})
