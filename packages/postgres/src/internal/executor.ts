/**
 * Running one statement on a pool and saying what became of it. Reads fail with
 * StorageUnavailable whatever happened. A write is classified by whether its statement left the
 * process and by the reply:
 * - not sent (no connection could be had within the connect timeout, the connection was unusable,
 *   the query was still queued when the timeout fired and was taken out of the queue, the call was
 *   interrupted before it was sent, its transaction's end was already issued) → certainly not
 *   applied;
 * - run by a pooled connection that was inside a transaction block → not applied (that
 *   transaction is rolled back when the connection is destroyed);
 * - an error reply of severity `ERROR` (other than the shutdown and connection classes 57P and 08)
 *   → the statement failed, and with it its implicit transaction: certainly not applied;
 * - anything else after sending — the connection dropped or was terminated (`FATAL` 57P01 from
 *   `pg_terminate_backend` or a shutdown: under synchronous replication the server says "the
 *   transaction has already committed locally" before it), no reply within the client timeout, a
 *   severity the server localised — → perhaps applied.
 * A statement is sent at most once: node-postgres never resends, and the pool hands each call a
 * connection of its own.
 *
 * @internal
 */
import { Effect } from "effect"
import { type ClientBase, DatabaseError, type Pool, Query, type QueryResultRow } from "pg"

/** Why a statement failed, and whether it may have been applied. */
export interface StatementFailure {
  readonly applied: "no" | "maybe"
  readonly cause: Error
  /** The SQLSTATE of an error reply. */
  readonly code: string | undefined
  /** The constraint an error reply names. */
  readonly constraint: string | undefined
}

const asError = (cause: unknown): Error =>
  cause instanceof Error ? cause : new Error(typeof cause === "string" ? cause : "unknown failure")

/**
 * Whether an error reply means the statement was refused and rolled back. The severity is read in
 * English only: a server with localised messages has every error counted as "maybe".
 */
export const rolledBack = (cause: unknown): boolean =>
  cause instanceof DatabaseError &&
  cause.severity === "ERROR" &&
  cause.code !== undefined &&
  !cause.code.startsWith("57P") &&
  !cause.code.startsWith("08")

const failure = (applied: "no" | "maybe", cause: unknown): StatementFailure => {
  const error = asError(cause)
  return {
    applied,
    cause: error,
    code: error instanceof DatabaseError ? error.code : undefined,
    constraint: error instanceof DatabaseError ? error.constraint : undefined,
  }
}

/** A statement's answer: its rows and its command tag (`COMMIT`, or `ROLLBACK` for an aborted transaction's COMMIT). */
export interface Outcome<R> {
  readonly rows: ReadonlyArray<R>
  readonly command: string
}

/** What runs statements: on a connection of a pool per call, or on one connection a caller holds. */
export interface Executor {
  /**
   * Whether each statement runs in its own implicit transaction (a pool's), so that one rolled
   * back by the server leaves nothing else undone; not on a connection inside a caller's
   * transaction, where the error aborts the caller's whole transaction.
   */
  readonly ownTransactions: boolean
  /**
   * Runs `text` with `values` once; the failure says whether it may have been applied. With a
   * `name` (one name per text, always the same), an executor that prepares statements runs it as
   * that named prepared statement: parsed once per connection, then only bound and executed.
   */
  readonly run: <R extends QueryResultRow>(
    text: string,
    values: ReadonlyArray<unknown>,
    name?: string,
  ) => Effect.Effect<Outcome<R>, StatementFailure>
}

/**
 * Whether an error reply says that a connection's prepared statement is no longer what the client
 * thinks: gone (`26000`, after a `DEALLOCATE` or `DISCARD ALL` by someone else, or a pooler that
 * moved the session), or planned for another result type (`0A000`, "cached plan must not change
 * result type", after the schema changed under it), or there already when the client thinks it
 * is not (`42P05`, a session shared behind a pooler). node-postgres would go on using it on that
 * connection; the executor destroys the connection instead, so the next call prepares afresh.
 */
const stalePrepared = (cause: unknown): boolean =>
  cause instanceof DatabaseError && (cause.code === "26000" || cause.code === "0A000" || cause.code === "42P05")

/** How a sent (or unsent) statement ended, as the executor reports it. */
const settle = <R>(outcome: {
  readonly sent: boolean
  readonly result?: Outcome<R>
  readonly error?: unknown
}): Effect.Effect<Outcome<R>, StatementFailure> => {
  if (outcome.error === undefined) return Effect.succeed(outcome.result ?? { rows: [], command: "" })
  return Effect.fail(failure(!outcome.sent || rolledBack(outcome.error) ? "no" : "maybe", outcome.error))
}

/**
 * Whether a statement may still leave the process, asked at the moment node-postgres would send
 * it (`submit`). A statement refused there is failed by node-postgres without being sent.
 */
type MaySend = () => boolean

const refusal = () => new Error("the statement was withdrawn before it was sent")

/**
 * Sends one query on a checked-out client, bounded by `timeoutMillis` (node-postgres's
 * `query_timeout`, which also takes a query that is still queued out of the queue, so it is never
 * sent late). `maySend` is asked when node-postgres takes the query off its queue to send it: a
 * `false` fails it unsent. Resolves with whether it was sent (`submit` went through) and how it
 * ended.
 */
const send = <R extends QueryResultRow>(
  client: ClientBase,
  text: string,
  values: ReadonlyArray<unknown>,
  timeoutMillis: number,
  maySend: MaySend,
  name: string | undefined,
): Promise<{ readonly sent: boolean; readonly result?: Outcome<R>; readonly error?: unknown }> =>
  new Promise((resolve) => {
    let sent = false
    // Made from the text (a config object would be copied property by property, a cost on every
    // statement), the name set as the config's `name` would set it.
    const query = new Query<R>(text, [...values])
    if (name !== undefined) (query as unknown as { name: string }).name = name
    const submit = query.submit.bind(query)
    query.submit = (connection) => {
      // An Error returned here is handed to the query's callback; nothing is written.
      if (!maySend()) return refusal()
      sent = true
      const refused = submit(connection)
      // node-postgres refuses some queries before writing anything (a name it knows for another
      // text, values that are not an array): not sent.
      if ((refused as unknown) instanceof Error) sent = false
      return refused
    }
    // Read by node-postgres from the submittable itself (`config.query_timeout`).
    ;(query as unknown as { query_timeout: number }).query_timeout = timeoutMillis
    ;(
      query as unknown as { callback: (error: Error | undefined, result?: { rows: Array<R>; command: string }) => void }
    ).callback = (error, result) => {
      if (error) resolve({ sent, error })
      else resolve({ sent, result: { rows: result?.rows ?? [], command: result?.command ?? "" } })
    }
    try {
      client.query(query)
    } catch (error) {
      resolve({ sent, error })
    }
  })

/** Swallows errors a connection emits while it is checked out; the query's callback has them. */
const ignore = () => undefined

/**
 * Whether a pooled connection is outside any transaction block, as the server said in its last
 * ReadyForQuery (`null` before the first one of a new connection has been recorded). A connection a caller gave back inside a transaction (or with its end still in
 * flight) would run a statement inside that transaction: it would answer, and be undone when the
 * connection closes.
 */
const idle = (client: ClientBase): boolean => {
  const status = client.getTransactionStatus()
  return status !== "T" && status !== "E"
}

const outsideTransaction = () =>
  new Error("the pool's connection was inside a transaction block (a caller released it without ending it)")

/**
 * An executor over a pool: each call checks out a connection (bounded by the pool's
 * `connectionTimeoutMillis`), runs one statement on it in its own implicit transaction and
 * releases it — destroying it after any failure that leaves its state unknown, or that says a
 * prepared statement of it is stale. With `prepare`, a named statement is prepared once per
 * connection (see {@link Executor}); without, names are ignored. A connection that
 * is inside a transaction block before or after the statement is destroyed, and the statement
 * counts as not applied: its writes belonged to that transaction, which the server rolls back
 * when the connection closes. A call interrupted before its statement was sent never sends it.
 */
export const poolExecutor = (pool: Pool, timeoutMillis: number, prepare: boolean): Executor => ({
  ownTransactions: true,
  run: <R extends QueryResultRow>(text: string, values: ReadonlyArray<unknown>, name?: string) =>
    Effect.async<Outcome<R>, StatementFailure>((resume) => {
      let cancelled = false
      // The callback form: node-postgres calls it in the same turn as it hands the connection
      // over, so the error listener is in place before the socket's next message is parsed (a
      // backend terminated right after connecting sends its error in the same packet).
      pool.connect((error, client, release) => {
        if (error !== undefined || client === undefined) {
          if (!cancelled) resume(Effect.fail(failure("no", error ?? new Error("no connection"))))
          return
        }
        if (cancelled) {
          release()
          return
        }
        if (!idle(client)) {
          const cause = outsideTransaction()
          release(cause)
          resume(Effect.fail(failure("no", cause)))
          return
        }
        client.on("error", ignore)
        const named = prepare ? name : undefined
        send<R>(client, text, values, timeoutMillis, () => !cancelled, named).then((outcome) => {
          client.removeListener("error", ignore)
          if ((outcome.error === undefined || rolledBack(outcome.error)) && !idle(client)) {
            const cause = outsideTransaction()
            release(cause)
            if (!cancelled) resume(Effect.fail(failure("no", cause)))
            return
          }
          const healthy =
            outcome.error === undefined ||
            (rolledBack(outcome.error) && !(named !== undefined && stalePrepared(outcome.error)))
          release(healthy ? undefined : asError(outcome.error))
          if (!cancelled) resume(settle(outcome))
        })
      })
      // An interrupted call whose statement was sent still runs to its end (a statement cannot
      // be recalled once sent); its connection is released as usual.
      return Effect.sync(() => {
        cancelled = true
      })
    }),
})

/**
 * Whether statements may still be sent on a connection inside a transaction run by
 * `PostgresTransaction`: closed once its `COMMIT` or `ROLLBACK` is issued, and never opened again.
 */
export interface Gate {
  closed: boolean
}

const gates = new WeakMap<ClientBase, Gate>()

/** Puts `client` under `gate`: every {@link clientExecutor} made on it from now on obeys the gate. */
export const guard = (client: ClientBase, gate: Gate): void => {
  gates.set(client, gate)
}

/** Takes `client` out of its gate (executors made under it keep obeying it). */
export const unguard = (client: ClientBase): void => {
  gates.delete(client)
}

/**
 * An executor over one connection the caller holds (inside its transaction): each call runs one
 * statement on it, unnamed (the connection and its prepared statements are the caller's), with an
 * error listener for the duration of the call. node-postgres queues
 * statements on a connection; one still queued when the timeout fires is taken out of the queue,
 * and one whose call was interrupted, or whose gate (taken when the executor is made, see
 * {@link guard}; `null` for none) closed, is not sent — so no statement is ever sent late.
 */
export const clientExecutor = (
  client: ClientBase,
  timeoutMillis: number,
  gate: Gate | null = gates.get(client) ?? null,
): Executor => ({
  ownTransactions: false,
  run: <R extends QueryResultRow>(text: string, values: ReadonlyArray<unknown>) =>
    Effect.async<Outcome<R>, StatementFailure>((resume) => {
      let cancelled = false
      client.on("error", ignore)
      send<R>(client, text, values, timeoutMillis, () => !cancelled && gate?.closed !== true, undefined).then(
        (outcome) => {
          client.removeListener("error", ignore)
          if (!cancelled) resume(settle(outcome))
        },
      )
      return Effect.sync(() => {
        cancelled = true
      })
    }),
})
