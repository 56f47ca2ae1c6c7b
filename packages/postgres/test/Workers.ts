/**
 * Starting {@link LoadWorker} child processes and reading their reports, for the multi-process
 * test.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { HolderRef } from "@creditlock/core"

/** What a worker is told (as JSON on its command line). */
export interface WorkerArgs {
  readonly worker: number
  /** The database, `postgres://…`. */
  readonly url: string
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
  /** Lines that are none of the above. */
  readonly unknown: ReadonlyArray<string>
}

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const workerScript = fileURLToPath(new URL("./LoadWorker.ts", import.meta.url))

/** A running worker and what it wrote to stderr so far. */
export interface Worker {
  readonly child: ChildProcess
  readonly stderr: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/**
 * Starts a worker with this Node binary and tsx (a root dev dependency, resolved from the package
 * directory; run `pnpm install` at the repository root when it is missing).
 */
export const startWorker = (args: WorkerArgs): Worker => {
  const child = spawn(process.execPath, ["--import", "tsx", workerScript, JSON.stringify(args)], {
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
  return { child, stderr: () => stderr, exited }
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

/** Names fresh holders: contracts of one new customer. */
export const freshRefs = (count: number): ReadonlyArray<HolderRef> => {
  const customerId = `cust-${randomUUID()}`
  return Array.from({ length: count }, () => ({
    customerId,
    holderType: "contracts" as const,
    holderId: `sub-${randomUUID()}`,
  }))
}
