/**
 * Starting {@link LoadWorker} child processes and reading their reports, for the multi-process
 * and crash tests.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { CreditEngine, type HolderRef, type JournalEntry, Storage } from "@creditlock/core"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { SqliteStorage } from "../src/index.js"

/** What a worker is told (as JSON on its command line). */
export interface WorkerArgs {
  readonly worker: number
  readonly filename: string
  readonly refs: ReadonlyArray<HolderRef>
  /** How long to generate load, from when the worker has opened the holders (which it does first). */
  readonly millis: number
  readonly reportFile: string
}

/** One acknowledged modification. */
export interface Ack {
  readonly holder: number
  readonly delta: number
  readonly entryId: string
}

/** A worker's report file, parsed. */
export interface Report {
  readonly acks: ReadonlyArray<Ack>
  readonly done: { readonly acks: number; readonly lockedRetries: number; readonly refused: number } | null
  readonly errors: ReadonlyArray<string>
  /** Lines that are none of the above (a torn last line cannot happen: each is one write). */
  readonly unknown: ReadonlyArray<string>
}

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const workerScript = fileURLToPath(new URL("./LoadWorker.ts", import.meta.url))
const commitWorkerScript = fileURLToPath(new URL("./CommitWorker.ts", import.meta.url))
const claimWorkerScript = fileURLToPath(new URL("./ClaimWorker.ts", import.meta.url))

/** A running worker and what it wrote to stderr so far. */
export interface Worker {
  readonly child: ChildProcess
  /** Where it writes its report. */
  readonly reportFile: string
  readonly stderr: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/**
 * Starts a worker with this Node binary and tsx (a root dev dependency, resolved from the package
 * directory; run `pnpm install` at the repository root when it is missing).
 */
export const startWorker = (args: WorkerArgs): Worker => spawnScript(workerScript, args)

const spawnScript = (script: string, args: { readonly reportFile: string }): Worker => {
  const child = spawn(process.execPath, ["--import", "tsx", script, JSON.stringify(args)], {
    cwd: packageDir,
    stdio: ["ignore", "ignore", "pipe"],
  })
  let stderr = ""
  child.stderr?.setEncoding("utf8")
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject)
    child.once("exit", (code, signal) => resolve({ code, signal }))
  })
  return { child, reportFile: args.reportFile, stderr: () => stderr, exited }
}

/** Reads a worker's report file (empty when the worker has not written yet). */
export const readReport = (file: string): Report => {
  const lines = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
    : []
  const acks: Array<Ack> = []
  const errors: Array<string> = []
  const unknown: Array<string> = []
  let done: Report["done"] = null
  for (const line of lines) {
    const [word, ...rest] = line.split(" ")
    if (word === "ack" && rest.length === 3) {
      acks.push({ holder: Number(rest[0]), delta: Number(rest[1]), entryId: String(rest[2]) })
    } else if (word === "done") {
      done = JSON.parse(rest.join(" ")) as Report["done"]
    } else if (word === "error") {
      errors.push(JSON.parse(rest.join(" ")) as string)
    } else {
      unknown.push(line)
    }
  }
  return { acks, done, errors, unknown }
}

/** What the database holds for one holder after a run. */
export interface HolderState {
  /** The current GBP value. */
  readonly value: number
  /** The result of the engine's `verify`. */
  readonly verified: boolean
  /** How many "opened" entries the journal holds (exactly one when creation raced correctly). */
  readonly opened: number
  /** The GBP delta of each modification entry, by entry id. */
  readonly modifications: ReadonlyMap<string, number>
}

/** Opens the file with the adapter and reads each holder's value, `verify` result and journal. */
export const inspect = (filename: string, refs: ReadonlyArray<HolderRef>) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const storage = yield* Storage
    return yield* Effect.forEach(refs, (ref) =>
      Effect.gen(function* () {
        const view = yield* engine.getCredit(ref)
        const report = yield* engine.verify(ref)
        const journal = yield* storage.journal(ref, { afterSeq: 0, limit: 1_000_000 })
        const modifications = new Map<string, number>()
        for (const entry of journal) {
          if (entry.kind === "modification") modifications.set(entry.id, entry.changes[0]?.delta ?? Number.NaN)
        }
        const value = view.current.credit.find((c) => c.amount.currencyCode === "GBP")?.amount.value ?? 0
        const opened = journal.filter((entry) => entry.kind === "opened").length
        return { value, verified: report.ok, opened, modifications } satisfies HolderState
      }),
    )
  }).pipe(Effect.provide(CreditEngine.layer().pipe(Layer.provideMerge(SqliteStorage.layer({ filename })))))

/** Names fresh holders: contracts of one new customer. */
export const freshRefs = (count: number): ReadonlyArray<HolderRef> => {
  const customerId = `cust-${randomUUID()}`
  return Array.from({ length: count }, () => ({
    customerId,
    holderType: "contracts" as const,
    holderId: `sub-${randomUUID()}`,
  }))
}

/** Opens fresh holders in the file and closes the database again. */
export const openHolders = (filename: string, count: number) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const refs = freshRefs(count)
    yield* Effect.forEach(refs, (ref) => engine.openHolder(ref))
    return refs
  }).pipe(Effect.provide(CreditEngine.layer().pipe(Layer.provide(SqliteStorage.layer({ filename })))))

/** What a {@link startCommitWorker} child is told: where to crash its last commit. */
export interface CrashArgs {
  readonly filename: string
  readonly reportFile: string
  readonly customerId: string
  /** The last commit creates a new holder, or appends to the one the setup made. */
  readonly scenario: "create" | "update"
  /** The adapter table whose `nth` written row (insert or update) kills the process. */
  readonly table: "creditlock_holders" | "creditlock_journal" | "creditlock_index" | "creditlock_aliases"
  readonly nth: number
}

/** What the setup of a commit worker committed: one holder at `revision` with these entries. */
export interface CrashSetup {
  readonly holder: HolderRef
  readonly revision: number
  readonly entries: ReadonlyArray<JournalEntry>
}

/** What the killed commit would have written: its holder's new entries and new claims. */
export interface FinalCommit {
  readonly holder: HolderRef
  readonly entryIds: ReadonlyArray<string>
  readonly claims: ReadonlyArray<string>
}

/** A commit worker's report file, parsed. */
export interface CrashReport {
  readonly setup: CrashSetup | null
  readonly final: FinalCommit | null
  /** The last commit's answer, when the crash point never fired. */
  readonly survived: string | null
  readonly errors: ReadonlyArray<string>
}

/** Starts a {@link CrashArgs} worker (`CommitWorker.ts`), like {@link startWorker}. */
export const startCommitWorker = (args: CrashArgs): Worker => spawnScript(commitWorkerScript, args)

/** Reads a commit worker's report file. */
export const readCrashReport = (file: string): CrashReport => {
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n") : []
  const report: { -readonly [K in keyof CrashReport]: CrashReport[K] } = {
    setup: null,
    final: null,
    survived: null,
    errors: [],
  }
  for (const line of lines) {
    const space = line.indexOf(" ")
    const [word, rest] = space < 0 ? [line, ""] : [line.slice(0, space), line.slice(space + 1)]
    if (word === "setup") report.setup = JSON.parse(rest) as CrashSetup
    else if (word === "final") report.final = JSON.parse(rest) as FinalCommit
    else if (word === "survived") report.survived = rest
    else if (word !== "") report.errors = [...report.errors, line]
  }
  return report
}

interface HolderRow {
  readonly holder_key: string
  readonly document: string
}

interface JournalRow {
  readonly holder_key: string
  readonly seq: number
  readonly id: string
  readonly reference: string | null
}

/**
 * Reads the file with better-sqlite3 alone (not the adapter) and lists every way its tables
 * disagree with each other — an empty list for a consistent file:
 * - the file passes `integrity_check` and `foreign_key_check`;
 * - each holder's document `journalSeq` equals both its number of journal rows and their highest
 *   `seq` (entries 1..n, none missing, none extra);
 * - every journal row's id and reference has its `order` index row for that holder;
 * - every claim names a holder whose document names that alias, and every alias a document names
 *   is claimed by its holder.
 */
export const inconsistencies = (filename: string): ReadonlyArray<string> => {
  const db = new Database(filename, { readonly: true })
  try {
    const found: Array<string> = []
    const integrity = db.pragma("integrity_check", { simple: true })
    if (integrity !== "ok") found.push(`integrity_check: ${String(integrity)}`)
    const foreign = db.pragma("foreign_key_check") as ReadonlyArray<unknown>
    if (foreign.length > 0) found.push(`foreign_key_check: ${JSON.stringify(foreign)}`)

    const holders = db.prepare<[], HolderRow>("SELECT holder_key, document FROM creditlock_holders").all()
    const journal = db.prepare<[string], { readonly n: number; readonly top: number | null }>(
      "SELECT count(*) AS n, max(seq) AS top FROM creditlock_journal WHERE holder_key = ?",
    )
    const claimsOf = db.prepare<[string], string>("SELECT alias FROM creditlock_aliases WHERE holder_key = ?").pluck()
    for (const holder of holders) {
      const document = JSON.parse(holder.document) as { journalSeq: number; balanceGroupId: string | null }
      const { n, top } = journal.get(holder.holder_key) ?? { n: 0, top: null }
      if (n !== document.journalSeq || (top ?? 0) !== document.journalSeq) {
        found.push(`${holder.holder_key}: journalSeq ${document.journalSeq}, ${n} journal rows, max seq ${top}`)
      }
      const claims = claimsOf.all(holder.holder_key)
      if (claims.some((alias) => alias !== document.balanceGroupId)) {
        found.push(`${holder.holder_key}: claims ${JSON.stringify(claims)}, document names ${document.balanceGroupId}`)
      }
      if (document.balanceGroupId !== null && !claims.includes(document.balanceGroupId)) {
        found.push(`${holder.holder_key}: document names ${document.balanceGroupId}, which it does not claim`)
      }
    }

    const indexed = db
      .prepare<[string, string], number>(
        "SELECT count(*) FROM creditlock_index WHERE kind = 'order' AND value = ? AND holder_key = ?",
      )
      .pluck()
    for (const row of db
      .prepare<[], JournalRow>("SELECT holder_key, seq, id, reference FROM creditlock_journal")
      .all()) {
      for (const value of [row.id, ...(row.reference === null ? [] : [row.reference])]) {
        if (indexed.get(value, row.holder_key) !== 1) {
          found.push(`${row.holder_key} seq ${row.seq}: no order index row for ${value}`)
        }
      }
    }
    return found
  } finally {
    db.close()
  }
}

/** What a {@link startClaimWorker} child is told: create `holder`, claiming `alias`. */
export interface ClaimArgs {
  readonly filename: string
  readonly reportFile: string
  readonly holder: HolderRef
  readonly alias: string
}

/** Starts a {@link ClaimArgs} worker (`ClaimWorker.ts`), like {@link startWorker}. */
export const startClaimWorker = (args: ClaimArgs): Worker => spawnScript(claimWorkerScript, args)

/** The lines of a report file (none when it was not written yet). */
export const reportLines = (file: string): ReadonlyArray<string> =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "")
    : []
