/**
 * A child process that kills itself in the middle of a commit, for the crash-point tests. It opens
 * the database file with the adapter (over its own better-sqlite3 connection), makes a few setup
 * commits straight through `Storage`, then arms a crash point — a TEMP trigger on one of the
 * adapter's tables that calls a function sending the process SIGKILL on its `nth` firing — and
 * sends one last commit. The triggers are temporary, so they live on this connection only and
 * never reach the file.
 *
 * The report file receives, with synchronous writes that survive the kill: `setup <json>` (what
 * the setup committed), `final <json>` (what the last commit would write), and — only if the
 * crash point never fired — `survived <json result>`; `error <cause>` on any failure.
 *
 * Run as `node --import tsx CommitWorker.ts '<json CrashArgs>'`.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { openSync, writeSync } from "node:fs"
import type { CommitRequest, HolderRef } from "@creditlock/core/storage"
import Database from "better-sqlite3"
import { Cause, Effect, Exit, Option } from "effect"
import { SqliteStorage } from "../src/index.js"
import { appending, opening } from "./Requests.js"
import type { CrashArgs, CrashSetup, FinalCommit } from "./Workers.js"

const args = JSON.parse(process.argv[2] ?? "null") as CrashArgs
const report = openSync(args.reportFile, "a")
const write = (line: string) => {
  writeSync(report, `${line}\n`)
}

/** Arms the crash point: SIGKILL on the `nth` row written to `table`. */
const arm = (db: Database.Database, table: CrashArgs["table"], nth: number): void => {
  let fired = 0
  db.function("creditlock_test_crash", { varargs: false, deterministic: false }, () => {
    fired++
    if (fired >= nth) {
      process.kill(process.pid, "SIGKILL")
      // The signal is delivered asynchronously to the process; nothing more may run meanwhile.
      for (;;) {}
    }
    return null
  })
  for (const event of ["INSERT", "UPDATE"]) {
    db.exec(
      `CREATE TEMP TRIGGER creditlock_test_crash_${event.toLowerCase()} AFTER ${event} ON main.${table}
       BEGIN SELECT creditlock_test_crash(); END`,
    )
  }
}

const program = Effect.gen(function* () {
  const db = yield* Effect.acquireRelease(
    Effect.sync(() => new Database(args.filename)),
    (db) => Effect.sync(() => db.close()),
  )
  const storage = yield* SqliteStorage.fromDatabase(db)
  const commit = (request: CommitRequest) =>
    Effect.flatMap(storage.commit(request), (result) =>
      result._tag === "Committed" ? Effect.void : Effect.dieMessage(`setup commit answered ${result._tag}`),
    )
  const load = (ref: HolderRef) =>
    Effect.flatMap(
      storage.load(ref),
      Option.match({ onNone: () => Effect.dieMessage("no holder"), onSome: Effect.succeed }),
    )

  const existing: HolderRef = { customerId: args.customerId, holderType: "contracts", holderId: `sub-${randomUUID()}` }
  const create = opening(existing, `bg-${randomUUID()}`, 2)
  yield* commit(create)
  const update = appending(yield* load(existing), 3)
  yield* commit(update)
  const setup: CrashSetup = { holder: existing, revision: 2, entries: [...create.entries, ...update.entries] }
  write(`setup ${JSON.stringify(setup)}`)

  const request =
    args.scenario === "create"
      ? opening({ ...existing, holderId: `sub-${randomUUID()}` }, `bg-${randomUUID()}`, 2)
      : appending(yield* load(existing), 3)
  const final: FinalCommit = {
    holder: request.ref,
    entryIds: request.entries.map((e) => e.id),
    claims: request.claims.filter((alias) => alias !== create.document.balanceGroupId),
  }
  write(`final ${JSON.stringify(final)}`)
  arm(db, args.table, args.nth)
  const result = yield* storage.commit(request)
  write(`survived ${JSON.stringify(result)}`)
})

Effect.runPromiseExit(Effect.scoped(program)).then((exit) => {
  if (Exit.isFailure(exit)) {
    write(`error ${JSON.stringify(Cause.pretty(exit.cause))}`)
    process.exitCode = 1
  }
})
