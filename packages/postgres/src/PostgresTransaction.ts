/**
 * Credit inside the caller's own PostgreSQL transaction: an invoice row and the debit it pays
 * commit together or not at all. {@link run} checks a connection out of the caller's pool, opens a
 * transaction (`BEGIN`, READ COMMITTED unless the database's default says otherwise), and gives
 * the body that connection — for the caller's own statements — and an engine whose every read and
 * commit runs on it. When the body succeeds it sends `COMMIT`; when it fails (or is interrupted)
 * it sends `ROLLBACK`. The semantics:
 *
 * - **All or nothing.** What the engine answered inside the body is applied only if the
 *   transaction commits. A `COMMIT` the server refused, or answered with `ROLLBACK` (a statement
 *   in the transaction had failed), fails with StorageUnavailable: nothing of it was applied,
 *   retry the whole transaction. A `COMMIT` whose reply was lost fails with OutcomeUnknown: read
 *   the journal (or retry with the same modification `reference`, which replays if it applied).
 * - **Events** (lock grants, thresholds crossed) are returned with the value once `COMMIT`
 *   succeeded, in the order they were published; on a rollback there are none. At most the
 *   engine's `eventBufferSize` (default 1,024) are kept until then: a transaction publishing more
 *   keeps only the latest that many.
 * - **Nothing after the end.** Once `COMMIT` or `ROLLBACK` is issued no statement of the
 *   transaction's engine is sent; a call still running fails with StorageUnavailable (not
 *   applied). The connection goes back to the pool only when the end was answered and the server
 *   reports it outside a transaction block; otherwise it is destroyed (the server rolls back).
 * - **Conflicts.** At READ COMMITTED a concurrent commit of the same holder makes the engine's
 *   compare-and-set wait for it and then answer `Conflict`, and the engine reloads and decides
 *   again, inside the transaction. At REPEATABLE READ or SERIALIZABLE the server answers a
 *   serialization failure instead: the statement fails, the transaction is aborted, and the
 *   body's call fails with StorageUnavailable (503) — retry the whole transaction.
 * - **Row locks.** Each holder the transaction commits stays row-locked until it ends: every
 *   other writer of that holder waits (at most its statement timeout, then 503).
 *
 * What the body must not do: send `COMMIT`, `ROLLBACK` or `SAVEPOINT` itself on the connection;
 * keep the connection or the engine after it returned; hold the transaction open for long, and
 * never past the expiry of a lock it uses (the engine judged the lock live when it decided; the
 * commit becomes visible only at `COMMIT`); or carry on with more work after an engine call
 * failed with StorageUnavailable or OutcomeUnknown other than failing the body (the transaction
 * may be aborted). Give the engine the same `lockKeySecret` as your long-lived engine when a lock
 * `reference` should be answered by both.
 *
 * @module
 */
import {
  type AsyncCreditEngine,
  CreditEngine,
  type CreditEngineOptions,
  CreditError,
  type CreditEvent,
  createCreditEngine,
  type InvalidRequest,
} from "@creditlock/core"
import { OutcomeUnknown, Storage, StorageUnavailable } from "@creditlock/core/storage"
import { Cause, Context, Effect, Either, Exit, Layer, Option, Queue, type Scope } from "effect"
import type { Pool, PoolClient } from "pg"
import { clientExecutor, type Gate, guard, rolledBack, unguard } from "./internal/executor.js"
import { REPLY_GRACE_MILLIS, settingsOf } from "./internal/settings.js"
import { type AdapterOptions, fromClient } from "./PostgresStorage.js"

/** Options of {@link run} and {@link runPromise}: the storage's, and the engine's. */
export interface TransactionOptions extends AdapterOptions {
  /** Options of the transaction's engine (see `CreditEngine.layer`). */
  readonly engine?: CreditEngineOptions | undefined
}

/** What the body of {@link run} is given. */
export interface Transaction {
  /** The connection the transaction runs on, for the caller's own statements. */
  readonly client: PoolClient
  /** An engine whose reads and commits run inside the transaction. */
  readonly credit: CreditEngine["Type"]
}

/** What a committed transaction answers: the body's value and the events its operations published. */
export interface Committed<A> {
  readonly value: A
  readonly events: ReadonlyArray<CreditEvent>
}

const connect = (pool: Pool): Effect.Effect<PoolClient, StorageUnavailable> =>
  Effect.async((resume) => {
    pool.connect((error, client) => {
      if (error !== undefined || client === undefined) {
        resume(
          Effect.fail(
            new StorageUnavailable({
              detail: `PostgreSQL storage could not get a connection: ${error?.message ?? "none"}`,
              cause: error,
            }),
          ),
        )
        return
      }
      // In the turn the connection is handed over, so a terminated backend cannot end the process.
      client.on("error", ignore)
      resume(Effect.succeed(client))
    })
  })

const ignore = () => undefined

/**
 * Runs `body` in one transaction on a connection of `pool` (see the module documentation for
 * what is promised and what the body must not do). Fails with the body's error (rolled back),
 * StorageUnavailable (not applied: no connection, `BEGIN` or `COMMIT` refused, the transaction
 * aborted, options outside their ranges), OutcomeUnknown (the reply to `COMMIT` was lost), or
 * InvalidRequest (engine options outside their ranges; rolled back, nothing applied). Once
 * `COMMIT` or `ROLLBACK` is issued no statement of the transaction's engine is sent any more (a
 * call still running then fails with StorageUnavailable, not applied); the connection goes back
 * to the pool only when the server confirmed that the transaction ended, and is destroyed
 * otherwise (the server then rolls back whatever was not committed).
 */
export const run = <A, E, R>(
  pool: Pool,
  body: (transaction: Transaction) => Effect.Effect<A, E, R>,
  options: TransactionOptions = {},
): Effect.Effect<Committed<A>, E | StorageUnavailable | OutcomeUnknown | InvalidRequest, Exclude<R, Scope.Scope>> =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* settingsOf(options)
      const timeoutMillis = settings.statementMillis + REPLY_GRACE_MILLIS
      const gate: Gate = { closed: false }
      // Set when COMMIT or ROLLBACK was answered: only then may the connection be reused.
      let answered = false
      const { client, end } = yield* Effect.acquireRelease(
        // The executor is made with the connection, so the release below has it even when an
        // interrupt is delivered the moment the connection is obtained.
        Effect.map(connect(pool), (client) => {
          guard(client, gate)
          return { client, end: clientExecutor(client, timeoutMillis, null) }
        }),
        ({ client, end }) =>
          Effect.gen(function* () {
            if (!gate.closed) {
              // Interrupted, or failed between BEGIN and the end: roll back before giving it back.
              gate.closed = true
              answered = Either.isRight(yield* Effect.either(end.run("ROLLBACK", [])))
            }
            unguard(client)
            client.removeListener("error", ignore)
            // Anything but a connection known to be outside a transaction block is destroyed.
            client.release(
              answered && client.getTransactionStatus() === "I"
                ? undefined
                : new Error("PostgreSQL transaction: its end was not confirmed, the connection is closed"),
            )
          }),
      )
      yield* Effect.mapError(end.run("BEGIN", []), (failure) => {
        return new StorageUnavailable({
          detail: `PostgreSQL transaction: BEGIN failed: ${failure.cause.message}`,
          cause: failure.cause,
        })
      })
      const storage = yield* fromClient(client, options)
      const context = yield* Layer.build(
        CreditEngine.layer(options.engine ?? {}).pipe(Layer.provide(Layer.succeed(Storage, storage))),
      )
      const credit = Context.get(context, CreditEngine)
      const published = yield* credit.subscribe
      const exit = yield* Effect.exit(body({ client, credit }))
      gate.closed = true
      if (Exit.isFailure(exit)) {
        answered = Either.isRight(yield* Effect.either(end.run("ROLLBACK", [])))
        return yield* Effect.failCause(exit.cause)
      }
      const committed = yield* end.run("COMMIT", []).pipe(
        Effect.mapError((failure): StorageUnavailable | OutcomeUnknown => {
          if (failure.applied === "no" && rolledBack(failure.cause)) {
            answered = true
            return new StorageUnavailable({
              detail: `PostgreSQL transaction: COMMIT was refused, nothing was applied: ${failure.cause.message}`,
              cause: failure.cause,
            })
          }
          return failure.applied === "no"
            ? new StorageUnavailable({
                detail: `PostgreSQL transaction: COMMIT was not sent: ${failure.cause.message}`,
                cause: failure.cause,
              })
            : new OutcomeUnknown({
                detail: `PostgreSQL transaction: the reply to COMMIT was lost: ${failure.cause.message}`,
                cause: failure.cause,
              })
        }),
      )
      answered = true
      if (committed.command !== "COMMIT") {
        return yield* new StorageUnavailable({
          detail: `PostgreSQL transaction: the server answered COMMIT with ${committed.command || "nothing"} (a statement in it failed): nothing was applied`,
        })
      }
      const events = yield* Queue.takeAll(published)
      return { value: exit.value, events: [...events] }
    }),
  )

/** What the body of {@link runPromise} is given. */
export interface PromiseTransaction {
  /** The connection the transaction runs on, for the caller's own statements. */
  readonly client: PoolClient
  /** The Promise facade of an engine whose reads and commits run inside the transaction. */
  readonly credit: AsyncCreditEngine
}

/**
 * Counts the calls of `engine` still running, so that a body that resolves while one of them is
 * still running can be told from one that awaited them all.
 */
const tracked = (engine: AsyncCreditEngine): { readonly engine: AsyncCreditEngine; readonly running: () => number } => {
  let running = 0
  const track =
    <Args extends ReadonlyArray<unknown>, B>(f: (...args: Args) => Promise<B>) =>
    (...args: Args): Promise<B> => {
      running += 1
      const call = f(...args)
      // Registered before the caller can await `call`, so the count is down when it resumes.
      call.then(
        () => {
          running -= 1
        },
        () => {
          running -= 1
        },
      )
      return call
    }
  return {
    running: () => running,
    engine: {
      ...engine,
      openHolder: track(engine.openHolder),
      getCredit: track(engine.getCredit),
      lock: track(engine.lock),
      tryLock: track(engine.tryLock),
      modify: track(engine.modify),
      extendLock: track(engine.extendLock),
      unlock: track(engine.unlock),
      withLock: (ref, fn, options) => track(engine.withLock)(ref, fn, options),
      unlockCustomer: track(engine.unlockCustomer),
      setCreditLimits: track(engine.setCreditLimits),
      getCreditLimits: track(engine.getCreditLimits),
      journal: track(engine.journal),
      verify: track(engine.verify),
    },
  }
}

/**
 * {@link run} for code that does not use Effect: `body` is async and gets the Promise facade of
 * the transaction's engine. Resolves with the value and the events once `COMMIT` succeeded;
 * rejects with the body's own error (rolled back), or with a `CreditError` (503
 * `STORAGE_UNAVAILABLE`: not applied; 503 `OUTCOME_UNKNOWN`: the reply to `COMMIT` was lost). A
 * body that resolves while calls of its engine are still running (not awaited, or given up by a
 * `Promise.race`) is rolled back and rejects with 503 `STORAGE_UNAVAILABLE`: what those calls do
 * would otherwise land after (or be cut off by) `COMMIT`.
 */
export const runPromise = async <A>(
  pool: Pool,
  body: (transaction: PromiseTransaction) => Promise<A>,
  options: TransactionOptions = {},
): Promise<Committed<A>> => {
  class BodyFailure {
    constructor(readonly error: unknown) {}
  }
  let credit: AsyncCreditEngine | undefined
  let unsubscribe: (() => Promise<void>) | undefined
  const events: Array<CreditEvent> = []
  const program = run(
    pool,
    ({ client }) =>
      Effect.gen(function* () {
        const storage = yield* fromClient(client, options)
        // Invalid engine options throw a CreditError (400), handed to the caller as it is.
        const engine = yield* Effect.try({
          try: () => createCreditEngine({ storage: Layer.succeed(Storage, storage), ...options.engine }),
          catch: (error) => new BodyFailure(error),
        })
        credit = engine
        unsubscribe = yield* Effect.promise(() => engine.onEvent((event) => events.push(event)))
        const calls = tracked(engine)
        const value = yield* Effect.tryPromise({
          try: () => body({ client, credit: calls.engine }),
          catch: (error) => new BodyFailure(error),
        })
        const running = calls.running()
        if (running > 0) {
          return yield* new StorageUnavailable({
            detail: `PostgreSQL transaction: the body returned while ${running} call(s) of its engine were still running; rolled back, nothing was applied (await every call before returning)`,
          })
        }
        return value
      }),
    options,
  )
  try {
    const exit = await Effect.runPromiseExit(program)
    if (Exit.isSuccess(exit)) {
      // Events reach the listener as the operations publish them; COMMIT's round trip came after the last.
      return { value: exit.value.value, events: [...events] }
    }
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure) && failure.value instanceof BodyFailure) throw failure.value.error
    throw CreditError.fromCause(exit.cause)
  } finally {
    await unsubscribe?.()
    await credit?.close()
  }
}
