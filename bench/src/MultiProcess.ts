/**
 * The multi-process scenario: K processes, each with a few contenders, on shared holders of one
 * store; the parent checks the final state against every child's acknowledgements.
 *
 * @module
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { type ContentionLog, countingRoundTrips, holderIdsOf, type ScenarioResult, summarise } from "./Harness.js"
import { type SharedStore, type Side, sharedTarget } from "./Targets.js"

const worker = fileURLToPath(new URL("./ProcessWorker.ts", import.meta.url))

/** What a worker prints: its contention log and the round trips its own target counted. */
export interface WorkerLog extends ContentionLog {
  readonly roundTrips: number | null
}

/** Runs `processes` × `contenders` loops over `holders` shared holders for `durationMs`. */
export const runMultiProcess = async (
  store: SharedStore,
  side: Side,
  options: {
    readonly processes: number
    readonly contenders: number
    readonly holders: number
    readonly durationMs: number
    /** Each process's contenders on holders of their own (`holders` ≥ processes × contenders). */
    readonly disjoint?: boolean
  },
): Promise<ScenarioResult & { readonly target: string }> => {
  const parent = sharedTarget(store, side)
  const holderIds = holderIdsOf(randomUUID(), options.holders)
  for (const id of holderIds) await parent.open(id)
  const children = Array.from({ length: options.processes }, (_, p) => {
    const first = options.disjoint === true ? p * options.contenders : p
    const job = { store, side, holderIds, contenders: options.contenders, durationMs: options.durationMs, first }
    const child = spawn(process.execPath, ["--import", "tsx", worker, JSON.stringify(job)], {
      stdio: ["pipe", "pipe", "inherit"],
    })
    const lines = createInterface({ input: child.stdout })
    const output: Array<string> = []
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => (line === "ready" ? resolve() : output.push(line)))
      child.on("exit", (code) => reject(new Error(`benchmark worker exited with ${code} before it was ready`)))
    })
    const done = new Promise<WorkerLog>((resolve, reject) => {
      child.on("exit", (code) =>
        code === 0 && output.length > 0
          ? resolve(JSON.parse(output.join("")) as WorkerLog)
          : reject(new Error(`benchmark worker exited with ${code}`)),
      )
    })
    // Awaited below; this keeps an early failure of another child from leaving it unhandled.
    done.catch(() => undefined)
    return { child, ready, done }
  })
  try {
    await Promise.all(children.map((c) => c.ready))
    const { result: logs, roundTrips: counted } = await countingRoundTrips(parent, async () => {
      for (const c of children) c.child.stdin?.write("go\n")
      return Promise.all(children.map((c) => c.done))
    })
    // A store-wide count saw every child; a per-process count is each child's own.
    const roundTrips =
      parent.roundTrips?.scope === "process"
        ? logs.reduce<number | null>((sum, l) => (sum === null || l.roundTrips === null ? null : sum + l.roundTrips), 0)
        : counted
    const result = await summarise(parent, holderIds, options.processes * options.contenders, logs, roundTrips)
    return { ...result, target: `${parent.name} × ${options.processes} processes` }
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGKILL")
    await parent.close()
  }
}
