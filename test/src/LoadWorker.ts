/**
 * The body of a load-generating child process, for an adapter's multi-process and crash tests:
 * it opens the given holders (idempotently, so that several workers race to create them) and
 * loops lock → modify → unlock over them for `millis`, retrying while the credit is locked by
 * another process. Each acknowledged modification is appended to the report file as
 * `ack <holder> <delta> <entryId>` right after `modify` resolves, with a synchronous write (so the
 * line survives a SIGKILL that follows it); at the end it writes `done <counts>`, or
 * `error <cause>` on any failure other than CreditLocked or InsufficientCredit.
 *
 * An adapter's worker script parses its arguments and calls {@link runLoadWorker} with its storage.
 *
 * @module
 */
import { openSync, writeSync } from "node:fs"
import { CreditEngine } from "@creditlock/core"
import type { HolderRef, Storage } from "@creditlock/core/storage"
import { Cause, Duration, Effect, Either, Exit, Layer, Schedule } from "effect"

/** What a load worker is told: its number, the holders, how long, and where to report. */
export interface LoadArgs {
  readonly worker: number
  readonly refs: ReadonlyArray<HolderRef>
  /** How long to generate load, from when the worker has opened the holders (which it does first). */
  readonly millis: number
  readonly reportFile: string
}

/** Runs the load over `storage` and reports to `args.reportFile`; sets a non-zero exit code on failure. */
export const runLoadWorker = (args: LoadArgs, storage: Layer.Layer<Storage, unknown>): void => {
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

  Effect.runPromiseExit(Effect.provide(program, CreditEngine.layer().pipe(Layer.provide(storage)))).then((exit) => {
    if (Exit.isFailure(exit)) {
      write(`error ${JSON.stringify(Cause.pretty(exit.cause))}`)
      process.exitCode = 1
    }
  })
}
