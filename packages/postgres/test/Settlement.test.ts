/**
 * Under load, with the adapter's connections terminated again and again (`pg_terminate_backend`
 * on every backend of its pool, at random moments, so some land while a commit is in flight),
 * no answer is ever wrong. Four workers loop lock → modify (a unique reference each) → unlock on
 * holders of their own; afterwards every answer is checked against the journal:
 * - a modify answered with success is journaled exactly once, under the entry id it was answered;
 * - a modify answered StorageUnavailable (or any refusal) is not journaled at all;
 * - a modify answered OutcomeUnknown may be either (the test counts them);
 * - each holder's credit is the sum of its journaled modifications, and its journal verifies.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { type HolderRef, Storage } from "@creditlock/core/storage"
import { change, contract, engineWith } from "@creditlock/test-suite"
import { freshDatabase, startPostgres } from "@creditlock/test-suite/postgres-server"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Layer, Schedule } from "effect"
import { Client } from "pg"
import { PostgresStorage } from "../src/index.js"

const WORKERS = 4
const LOAD_MILLIS = 5_000

interface Answer {
  readonly holder: number
  readonly reference: string
  readonly delta: number
  readonly tag: string
  readonly entryId?: string
}

const worker = (index: number, ref: HolderRef, answers: Array<Answer>, until: number) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    while (Date.now() < until) {
      const locked = yield* Effect.either(engine.lock(ref))
      if (Either.isLeft(locked)) {
        // Locked (perhaps by a grant whose answer was lost) or unavailable: try again shortly.
        yield* Effect.sleep("20 millis")
        continue
      }
      const key = locked.right.lock.key
      const reference = `ref-${randomUUID()}`
      const delta = 1 + Math.floor(Math.random() * 100)
      const result = yield* Effect.either(engine.modify(ref, key, change("GBP", delta, "settlement", reference)))
      answers.push(
        Either.isRight(result)
          ? { holder: index, reference, delta, tag: "ok", entryId: result.right.entryId }
          : { holder: index, reference, delta, tag: result.left._tag },
      )
      yield* Effect.either(engine.unlock(ref, key))
    }
  })

/**
 * Runs the load on the database at `url` while `disturb` runs round after round (each answering
 * how many backends it terminated), then checks every answer against the journal.
 */
const settlement = (url: string, disturb: (killer: Client, application: string) => Effect.Effect<number>) =>
  Effect.gen(function* () {
    const application = `creditlock-${randomUUID()}`
    const context = yield* Layer.build(
      engineWith(
        PostgresStorage.layer({
          connectionString: url,
          applicationName: application,
          poolSize: WORKERS,
          statementTimeout: Duration.seconds(2),
        }),
        { settleTimeout: Duration.seconds(3), lockTtl: Duration.seconds(1) },
      ),
    )
    const refs = Array.from({ length: WORKERS }, () => contract())
    yield* Effect.provide(
      Effect.forEach(refs, (ref) => Effect.flatMap(CreditEngine, (e) => e.openHolder(ref))),
      context,
    )
    const killer = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new Client({ connectionString: url })
        client.on("error", () => undefined)
        await client.connect()
        return client
      }),
      (c) => Effect.promise(() => c.end()),
    )
    const until = Date.now() + LOAD_MILLIS
    let terminated = 0
    const kills = yield* Effect.fork(
      Effect.gen(function* () {
        while (Date.now() < until) terminated += yield* disturb(killer, application)
      }),
    )
    const answers: Array<Answer> = []
    yield* Effect.provide(
      Effect.forEach(refs, (ref, i) => worker(i, ref, answers, until), { concurrency: "unbounded" }),
      context,
    )
    yield* Fiber.join(kills)

    const check = Effect.gen(function* () {
      const engine = yield* CreditEngine
      const storage = yield* Storage
      return yield* Effect.forEach(refs, (ref) =>
        Effect.gen(function* () {
          const journal = yield* storage.journal(ref, { afterSeq: 0, limit: 1_000_000 })
          const view = yield* engine.getCredit(ref)
          const verified = (yield* engine.verify(ref)).ok
          return { journal, value: view.current.credit[0]?.amount.value ?? 0, verified }
        }),
      )
    })
    // pg_terminate_backend returns once the signal is sent: a backend signalled by the last round
    // may die under the first reads of the check. Reads are safe to repeat.
    const states = yield* Effect.provide(
      Effect.retry(check, { schedule: Schedule.spaced("100 millis"), times: 20 }),
      context,
    )
    const counts = new Map<string, number>()
    for (const answer of answers) counts.set(answer.tag, (counts.get(answer.tag) ?? 0) + 1)
    const summary = `answers ${JSON.stringify(Object.fromEntries(counts))}, ${terminated} backends terminated`

    states.forEach((state, h) => {
      expect(state.verified, summary).toBe(true)
      const modifications = state.journal.filter((e) => e.kind === "modification")
      expect(state.value, summary).toBe(modifications.reduce((sum, e) => sum + (e.changes[0]?.delta ?? 0), 0))
      const byReference = new Map<string, Array<string>>()
      for (const entry of modifications) {
        const ids = byReference.get(entry.reference ?? "") ?? []
        byReference.set(entry.reference ?? "", [...ids, entry.id])
      }
      const asked = new Set<string>()
      for (const answer of answers.filter((a) => a.holder === h)) {
        asked.add(answer.reference)
        const found = byReference.get(answer.reference) ?? []
        if (answer.tag === "ok") expect(found, `${summary}; success ${answer.reference}`).toEqual([answer.entryId])
        else if (answer.tag === "OutcomeUnknown") expect(found.length, summary).toBeLessThanOrEqual(1)
        else expect(found, `${summary}; ${answer.tag} ${answer.reference}`).toEqual([])
      }
      // Nothing journaled that no call asked for.
      for (const reference of byReference.keys()) expect(asked.has(reference), summary).toBe(true)
    })
    // The test did what it says: connections were terminated and work still got through.
    expect(terminated, summary).toBeGreaterThan(10)
    expect(counts.get("ok") ?? 0, summary).toBeGreaterThan(20)
    console.log(`postgres settlement: ${summary}`)
    return { terminated, answers: counts }
  })

/** Terminates every backend of the adapter's pool. */
const terminateAll = (killer: Client, application: string) =>
  Effect.promise(() =>
    killer.query<{ killed: boolean }>(
      "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1",
      [application],
    ),
  ).pipe(Effect.map((result) => result.rows.filter((r) => r.killed).length))

describe("postgres: settlement while connections are terminated", () => {
  it.live(
    "every answer matches the journal: success journaled once, StorageUnavailable not at all",
    () =>
      Effect.gen(function* () {
        const db = yield* Effect.acquireRelease(
          Effect.promise(() => freshDatabase()),
          (d) => Effect.promise(() => d.drop()),
        )
        yield* settlement(db.url, (killer, application) =>
          Effect.zipRight(
            Effect.sleep(Duration.millis(10 + Math.floor(Math.random() * 60))),
            terminateAll(killer, application),
          ),
        )
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "the same when commits are terminated after they committed locally (waiting for a synchronous standby that never answers)",
    () =>
      Effect.gen(function* () {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => startPostgres()),
          (s) => Effect.promise(() => s.dispose()),
        )
        let parked = 0
        const standby = (killer: Client, on: boolean) =>
          Effect.promise(async () => {
            await killer.query(`ALTER SYSTEM SET synchronous_standby_names = '${on ? "nobody" : ""}'`)
            await killer.query("SELECT pg_reload_conf()")
          })
        yield* settlement(server.url, (killer, application) =>
          Effect.gen(function* () {
            yield* Effect.sleep(Duration.millis(20 + Math.floor(Math.random() * 40)))
            yield* standby(killer, true)
            // Commits sent now are written locally, then wait for the standby until terminated.
            yield* Effect.sleep(Duration.millis(30 + Math.floor(Math.random() * 40)))
            const waiting = yield* Effect.promise(() =>
              killer.query<{ n: string }>(
                "SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'SyncRep'",
                [application],
              ),
            )
            parked += Number(waiting.rows[0]?.n ?? 0)
            const killed = yield* terminateAll(killer, application)
            yield* standby(killer, false)
            return killed
          }),
        )
        // The test did what it says: commits were terminated after committing locally.
        expect(parked).toBeGreaterThan(5)
        console.log(`postgres settlement: ${parked} commits terminated after committing locally`)
      }).pipe(Effect.scoped),
    90_000,
  )
})
