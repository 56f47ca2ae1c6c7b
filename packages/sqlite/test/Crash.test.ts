import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import {
  type CrashArgs,
  inconsistencies,
  inspect,
  openHolders,
  readCrashReport,
  readReport,
  startCommitWorker,
  startWorker,
} from "./Workers.js"

const dir = mkdtempSync(join(tmpdir(), "creditlock-sqlite-crash-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Acknowledged modifications to wait for before the kill. */
const ACKS_BEFORE_KILL = 200

describe("sqlite: a writer killed mid-load", () => {
  it("SIGKILL during the load: the file is intact and every acknowledged modification is present", async () => {
    const filename = join(dir, "crash.sqlite")
    const reportFile = join(dir, "writer.log")
    const refs = await Effect.runPromise(openHolders(filename, 2))
    const writer = startWorker({ worker: 0, filename, refs, millis: 60_000, reportFile })
    let running = true
    const stopped = () => {
      running = false
    }
    writer.exited.then(stopped, stopped)
    try {
      const started = Date.now()
      while (running && readReport(reportFile).acks.length < ACKS_BEFORE_KILL && Date.now() - started < 30_000) {
        await sleep(10)
      }
      expect(running, `the writer stopped before the kill; stderr:\n${writer.stderr()}`).toBe(true)
      expect(readReport(reportFile).acks.length, "the writer was too slow to start").toBeGreaterThanOrEqual(
        ACKS_BEFORE_KILL,
      )
      // A random moment inside the loop, so the kill may land inside a transaction.
      await sleep(Math.floor(Math.random() * 50))
      expect(writer.child.pid).toBeTypeOf("number")
      process.kill(writer.child.pid as number, "SIGKILL")
      expect(await writer.exited).toEqual({ code: null, signal: "SIGKILL" })
    } finally {
      // Never leave the child running when an expectation above failed.
      if (running) writer.child.kill("SIGKILL")
    }

    const report = readReport(reportFile)
    expect(report.errors).toEqual([])
    expect(report.unknown).toEqual([])
    expect(report.done).toBeNull()

    // The file as better-sqlite3 alone reads it: every table agrees with every other.
    expect(inconsistencies(filename)).toEqual([])

    const states = await Effect.runPromise(inspect(filename, refs))
    states.forEach((state, h) => {
      const acked = report.acks.filter((a) => a.holder === h)
      expect(state.verified).toBe(true)
      for (const ack of acked) expect(state.modifications.get(ack.entryId)).toBe(ack.delta)
    })
    // At most one modification was committed but not yet acknowledged when the kill landed.
    const committed = states.reduce((n, s) => n + s.modifications.size, 0)
    expect(committed - report.acks.length).toBeGreaterThanOrEqual(0)
    expect(committed - report.acks.length).toBeLessThanOrEqual(1)
  }, 60_000)
})

/**
 * Where a commit is killed: the last commit's `nth` row written to `table` — the first journal
 * row (after the document), the last journal row, and the last row of each commit (a create's
 * claim, an update's last order key). Each is a child process (about 2 s of start-up), so the list
 * is short.
 */
const crashPoints: ReadonlyArray<Pick<CrashArgs, "scenario" | "table" | "nth">> = [
  { scenario: "create", table: "creditlock_journal", nth: 3 },
  { scenario: "create", table: "creditlock_aliases", nth: 1 },
  { scenario: "update", table: "creditlock_journal", nth: 1 },
  { scenario: "update", table: "creditlock_journal", nth: 3 },
  { scenario: "update", table: "creditlock_index", nth: 6 },
]

describe("sqlite: a writer killed at each point of a commit", () => {
  it("SIGKILL on a row of the commit: the file holds none of that commit, and its tables agree", async () => {
    const runs = crashPoints.map((point, i) => {
      const args: CrashArgs = {
        ...point,
        filename: join(dir, `point-${i}.sqlite`),
        reportFile: join(dir, `point-${i}.log`),
        customerId: `cust-crash-${i}`,
      }
      return { args, worker: startCommitWorker(args) }
    })
    const exits = await Promise.all(runs.map((run) => run.worker.exited))
    for (const [i, { args, worker }] of runs.entries()) {
      const name = `${args.scenario}, ${args.table} row ${args.nth}`
      const report = readCrashReport(args.reportFile)
      const context = `${name}; report ${JSON.stringify(report)}; stderr:\n${worker.stderr()}`
      expect(report.errors, context).toEqual([])
      expect(report.survived, `${context}: the crash point never fired`).toBeNull()
      expect(exits[i], context).toEqual({ code: null, signal: "SIGKILL" })
      expect(inconsistencies(args.filename), name).toEqual([])

      const { setup, final } = report
      if (setup === null || final === null) {
        expect.fail(`${context}: no setup or final line`)
        continue
      }
      const raw = new Database(args.filename, { readonly: true })
      try {
        // The setup is all there; nothing of the killed commit is.
        const key = (ref: typeof setup.holder) => `${ref.customerId}/${ref.holderType}/${ref.holderId}`
        const revision = raw.prepare("SELECT revision FROM creditlock_holders WHERE holder_key = ?").pluck()
        expect(revision.get(key(setup.holder)), name).toBe(setup.revision)
        expect(raw.prepare("SELECT count(*) FROM creditlock_holders").pluck().get(), name).toBe(1)
        expect(raw.prepare("SELECT id FROM creditlock_journal ORDER BY seq").pluck().all(), name).toEqual(
          setup.entries.map((e) => e.id),
        )
        const mentions = raw.prepare("SELECT count(*) FROM creditlock_index WHERE value = ?").pluck()
        for (const id of final.entryIds) expect(mentions.get(id), `${name}: order row for ${id}`).toBe(0)
        const claimed = raw.prepare("SELECT count(*) FROM creditlock_aliases WHERE alias = ?").pluck()
        for (const alias of final.claims) expect(claimed.get(alias), `${name}: claim ${alias}`).toBe(0)
      } finally {
        raw.close()
      }
    }
  }, 120_000)
})
