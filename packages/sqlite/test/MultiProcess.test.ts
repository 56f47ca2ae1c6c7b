import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import Database from "better-sqlite3"
import { Effect, Option } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { SqliteStorage } from "../src/index.js"
import { opening } from "./Requests.js"
import {
  freshRefs,
  inconsistencies,
  inspect,
  readReport,
  reportLines,
  startClaimWorker,
  startWorker,
  type Worker,
} from "./Workers.js"

const dir = mkdtempSync(join(tmpdir(), "creditlock-sqlite-processes-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const WORKERS = 4
const HOLDERS = 3
const LOAD_MILLIS = 3_000

describe("sqlite: several processes on one file", () => {
  it(`${WORKERS} processes creating one file, then looping lock → modify → unlock over ${HOLDERS} shared holders, lose nothing`, async () => {
    const filename = join(dir, "shared.sqlite")
    // The workers create the file, migrate it and open the holders themselves, all at once.
    const refs = freshRefs(HOLDERS)
    const reportFiles = Array.from({ length: WORKERS }, (_, w) => join(dir, `worker-${w}.log`))
    const workers = reportFiles.map((reportFile, worker) =>
      startWorker({ worker, filename, refs, millis: LOAD_MILLIS, reportFile }),
    )
    const exits = await Promise.all(workers.map((w) => w.exited))

    const reports = reportFiles.map(readReport)
    reports.forEach((report, w) => {
      const context = `worker ${w} (exit ${JSON.stringify(exits[w])}); stderr:\n${workers[w]?.stderr()}`
      expect(report.errors, context).toEqual([])
      expect(report.unknown, context).toEqual([])
      expect(exits[w], context).toEqual({ code: 0, signal: null })
      expect(report.done, context).not.toBeNull()
      expect(report.done?.acks, context).toBe(report.acks.length)
      expect(report.acks.length, `worker ${w} acknowledged nothing`).toBeGreaterThan(0)
    })
    // The holders really were contended across processes.
    expect(reports.reduce((n, r) => n + (r.done?.lockedRetries ?? 0), 0)).toBeGreaterThan(0)

    const raw = new Database(filename, { readonly: true })
    try {
      expect(raw.pragma("integrity_check", { simple: true })).toBe("ok")
      // Four processes migrated the new file at once; the schema was applied exactly once.
      expect(raw.prepare("SELECT version FROM creditlock_schema_version").pluck().all()).toEqual([1, 2])
    } finally {
      raw.close()
    }

    const acks = reports.flatMap((r) => r.acks)
    const states = await Effect.runPromise(inspect(filename, refs))
    states.forEach((state, h) => {
      const mine = acks.filter((a) => a.holder === h)
      expect(state.verified).toBe(true)
      expect(state.opened).toBe(1)
      expect(state.value).toBe(mine.reduce((sum, a) => sum + a.delta, 0))
      expect(state.modifications.size).toBe(mine.length)
      for (const ack of mine) expect(state.modifications.get(ack.entryId)).toBe(ack.delta)
    })
  }, 60_000)
})

/**
 * Holds the write lock of `db` with `commit` made in its open transaction (the adapter's commit is
 * a savepoint of it) while a child process sends its own claim, and commits once the child has
 * had time to read whatever it reads before asking for the lock. Returns the child.
 */
const whileLockHeld = async (db: Database.Database, commit: () => Promise<void>, start: () => Worker) => {
  db.prepare("BEGIN IMMEDIATE").run()
  let worker: Worker | undefined
  try {
    await commit()
    worker = start()
    let running = true
    const stopped = () => {
      running = false
    }
    worker.exited.then(stopped, stopped)
    const { reportFile } = worker
    const started = Date.now()
    const sending = () => reportLines(reportFile).includes("sending")
    while (running && !sending() && Date.now() - started < 30_000) await sleep(10)
    expect(sending(), worker.stderr()).toBe(true)
    await sleep(1_000)
    db.prepare("COMMIT").run()
    return worker
  } catch (error) {
    // Never leave the child running when an expectation above failed.
    worker?.child.kill("SIGKILL")
    throw error
  } finally {
    if (db.inTransaction) db.prepare("ROLLBACK").run()
  }
}

describe("sqlite: claims across processes", () => {
  it("a claim another process committed while this one waited for the write lock answers Claimed", async () => {
    const filename = join(dir, "claims.sqlite")
    const reportFile = join(dir, "claim.log")
    const alias = `bg-${randomUUID()}`
    const [owner, squatter] = [...freshRefs(1), ...freshRefs(1)]
    if (owner === undefined || squatter === undefined) return expect.fail("no holders")
    const db = new Database(filename)
    try {
      const storage = await Effect.runPromise(SqliteStorage.fromDatabase(db))
      // Read before the child's BEGIN IMMEDIATE, the alias is free; read inside its transaction,
      // it belongs to the owner.
      const worker = await whileLockHeld(
        db,
        async () => {
          const answer = await Effect.runPromise(storage.commit(opening(owner, alias, 1)))
          expect(answer).toEqual({ _tag: "Committed", revision: 1 })
        },
        () => startClaimWorker({ filename, reportFile, holder: squatter, alias }),
      )
      const exit = await worker.exited
      const lines = reportLines(reportFile)
      expect(exit, `${lines.join("\n")}\n${worker.stderr()}`).toEqual({ code: 0, signal: null })
      expect(lines.at(-1)).toBe(`answer ${JSON.stringify({ _tag: "Claimed", alias, holder: owner })}`)
      expect(await Effect.runPromise(storage.load(squatter))).toEqual(Option.none())
      expect(await Effect.runPromise(storage.lookup({ kind: "balanceGroup", value: alias }))).toEqual([owner])
    } finally {
      db.close()
    }
    expect(inconsistencies(filename)).toEqual([])
  }, 60_000)
})
