/**
 * A child process that sends one commit creating a holder that claims an alias, for the test of
 * claims racing across processes. It opens the file with the adapter (busy timeout 30 s, so it
 * waits for another process's write lock rather than failing), writes `sending` to the report
 * file, sends the commit, and writes `answer <json CommitResult>` (or `error <cause>`).
 *
 * Run as `node --import tsx ClaimWorker.ts '<json ClaimArgs>'`.
 *
 * @module
 */
import { openSync, writeSync } from "node:fs"
import { Cause, Effect, Exit } from "effect"
import { SqliteStorage } from "../src/index.js"
import { opening } from "./Requests.js"
import type { ClaimArgs } from "./Workers.js"

const args = JSON.parse(process.argv[2] ?? "null") as ClaimArgs
const report = openSync(args.reportFile, "a")
const write = (line: string) => {
  writeSync(report, `${line}\n`)
}

const program = Effect.gen(function* () {
  const storage = yield* SqliteStorage.make({ filename: args.filename, busyTimeout: "30 seconds" })
  const request = opening(args.holder, args.alias, 1)
  write("sending")
  const answer = yield* storage.commit(request)
  write(`answer ${JSON.stringify(answer)}`)
})

Effect.runPromiseExit(Effect.scoped(program)).then((exit) => {
  if (Exit.isFailure(exit)) {
    write(`error ${JSON.stringify(Cause.pretty(exit.cause))}`)
    process.exitCode = 1
  }
})
