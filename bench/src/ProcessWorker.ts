/**
 * A benchmark child process: builds the target described on the command line, says "ready",
 * waits for "go" on stdin, runs its contenders, and prints its contention log as JSON.
 *
 * @module
 */
import { createInterface } from "node:readline"
import { contend, countingRoundTrips } from "./Harness.js"
import type { WorkerLog } from "./MultiProcess.js"
import { type SharedStore, type Side, sharedTarget } from "./Targets.js"

interface Job {
  readonly store: SharedStore
  readonly side: Side
  readonly holderIds: ReadonlyArray<string>
  readonly contenders: number
  readonly durationMs: number
  readonly first: number
}

const job = JSON.parse(process.argv[2] ?? "{}") as Job
const target = sharedTarget(job.store, job.side)
// Opening connects (and, for SQLite, migrates) before the clock starts; a short warm-up on a
// holder of this process's own, which the parent does not count, lets the JIT compile the hot
// paths first, as they are in the single-process scenarios that ran before.
await target.read(job.holderIds[0] as string)
const warm = `${job.holderIds[0]}-warm-${job.first}`
await target.open(warm)
await contend(target, [warm], 1, Math.min(1000, job.durationMs), 0)
const lines = createInterface({ input: process.stdin })
console.log("ready")
for await (const line of lines) if (line === "go") break
const { result, roundTrips } = await countingRoundTrips(target, () =>
  contend(target, job.holderIds, job.contenders, job.durationMs, job.first),
)
await target.close()
const log: WorkerLog = { ...result, roundTrips }
console.log(JSON.stringify(log))
lines.close()
