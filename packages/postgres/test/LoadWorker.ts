/**
 * A load-generating child process for the multi-process test. It opens the storage on the
 * database given in its arguments (migrating it if need be, as every worker does at once), opens
 * the given holders (idempotently, so that several workers race to create them) and loops
 * lock → modify → unlock over them, retrying while the credit is locked by another process. Each
 * acknowledged modification is appended to the report file as `ack <holder> <delta> <entryId>`
 * right after `modify` resolves; at the end it writes `done <counts>`, or `error <cause>` on any
 * failure other than CreditLocked or InsufficientCredit.
 *
 * Run as `node --import tsx LoadWorker.ts '<json WorkerArgs>'`.
 *
 * @module
 */
import { openSync, writeSync } from "node:fs"
import { CreditEngine } from "@creditlock/core"
import { Cause, Duration, Effect, Either, Exit, Layer, Schedule } from "effect"
import { PostgresStorage } from "../src/index.js"
import type { WorkerArgs } from "./Workers.js"

const args = JSON.parse(process.argv[2] ?? "null") as WorkerArgs
const report = openSync(args.reportFile, "a")
const write = (line: string) => {
  writeSync(report, `${line}\n`)
}

const program = Effect.gen(function* () {
  const engine = yield* CreditEngine
  yield* Effect.forEach(args.refs, (ref) => engine.openHolder(ref))
  const until = Date.now() + args.millis
  const counts = { acks: 0, lockedRetries: 0, refused: 0 }
  const whileLocked = Schedule.spaced(Duration.millis(2)).pipe(Schedule.jittered)
  while (Date.now() < until) {
    const index = Math.floor(Math.random() * args.refs.length)
    const ref = args.refs[index]
    if (ref === undefined) return yield* Effect.dieMessage("no holders given")
    const { lock } = yield* engine.lock(ref).pipe(
      Effect.tapError((e) => Effect.sync(() => (e._tag === "CreditLocked" ? counts.lockedRetries++ : undefined))),
      Effect.retry({ schedule: whileLocked, while: (e) => e._tag === "CreditLocked" && Date.now() < until + 10_000 }),
    )
    // Mostly credits; some debits, which the engine refuses when the credit would go below 0.
    const delta = Math.random() < 0.25 ? -(1 + Math.floor(Math.random() * 60)) : 1 + Math.floor(Math.random() * 50)
    const result = yield* Effect.either(
      engine.modify(ref, lock.key, {
        reason: `worker ${args.worker}`,
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: delta } }],
      }),
    )
    if (Either.isRight(result)) {
      write(`ack ${index} ${delta} ${result.right.entryId}`)
      counts.acks++
    } else if (result.left._tag === "InsufficientCredit") {
      counts.refused++
    } else {
      return yield* result.left
    }
    yield* engine.unlock(ref, lock.key)
  }
  write(`done ${JSON.stringify(counts)}`)
})

const engine = CreditEngine.layer().pipe(
  Layer.provide(PostgresStorage.layer({ connectionString: args.url, poolSize: 2 })),
)

Effect.runPromiseExit(Effect.provide(program, engine)).then((exit) => {
  if (Exit.isFailure(exit)) {
    write(`error ${JSON.stringify(Cause.pretty(exit.cause))}`)
    process.exitCode = 1
  }
})
