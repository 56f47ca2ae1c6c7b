import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CreditEngine, Storage } from "@creditlock/core"
import { freshDatabase, psql } from "@creditlock/test-suite/postgres-server"
import { Effect, Layer } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { PostgresStorage } from "../src/index.js"
import { freshRefs, readReport, startWorker } from "./Workers.js"

// Fails the whole file, saying how to install and start PostgreSQL, when the server is not there.
const database = await freshDatabase()
const dir = mkdtempSync(join(tmpdir(), "creditlock-postgres-processes-"))
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await database.drop()
})

const WORKERS = 4
const HOLDERS = 3
const LOAD_MILLIS = 4_000

describe("postgres: several processes on one database", () => {
  it(`${WORKERS} processes migrating one empty database at once, then looping lock → modify → unlock over ${HOLDERS} shared holders, lose nothing and apply nothing twice`, async () => {
    const refs = freshRefs(HOLDERS)
    const reportFiles = Array.from({ length: WORKERS }, (_, w) => join(dir, `worker-${w}.log`))
    const workers = reportFiles.map((reportFile, worker) =>
      startWorker({ worker, url: database.url, refs, millis: LOAD_MILLIS, reportFile }),
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

    // Four processes migrated the empty database at once; the schema was applied exactly once.
    expect(
      await psql(database.port, "SELECT version FROM creditlock.schema_version ORDER BY version", database.name),
    ).toBe("1\n")

    const acks = reports.flatMap((r) => r.acks)
    const states = await Effect.runPromise(
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
            return {
              value,
              verified: report.ok,
              opened: journal.filter((e) => e.kind === "opened").length,
              modifications,
            }
          }),
        )
      }).pipe(
        Effect.provide(
          CreditEngine.layer().pipe(Layer.provideMerge(PostgresStorage.layer({ connectionString: database.url }))),
        ),
      ),
    )
    states.forEach((state, h) => {
      const mine = acks.filter((a) => a.holder === h)
      expect(state.verified).toBe(true)
      expect(state.opened).toBe(1)
      // No lost update: every acknowledged modification is there; none duplicated: nothing else is.
      expect(state.modifications.size).toBe(mine.length)
      for (const ack of mine) expect(state.modifications.get(ack.entryId)).toBe(ack.delta)
      expect(state.value).toBe(mine.reduce((sum, a) => sum + a.delta, 0))
    })
  }, 90_000)
})
