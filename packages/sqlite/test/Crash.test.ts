import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { inspect, openHolders, readReport, startWorker } from "./Workers.js"

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

    const raw = new Database(filename)
    try {
      expect(raw.pragma("integrity_check", { simple: true })).toBe("ok")
      expect(raw.pragma("foreign_key_check")).toEqual([])
    } finally {
      raw.close()
    }

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
