/**
 * After a connection drop, an answer never says "not applied" of a write that was
 * applied. Six workers, each on an idle holder of its own, loop lock → modify → unlock through the
 * engine while Redis connections are cut (`CLIENT KILL TYPE normal`, again and again) or the
 * server is SIGKILLed and restarted on the same port (AOF, `appendfsync always`). Afterwards every
 * answer is checked against the store:
 * - a `lock` answered StorageUnavailable holds nothing: no holder is ever found locked by a key
 *   nobody got, unless a lock on it answered OutcomeUnknown;
 * - a `modify` answered StorageUnavailable (or refused) is not in the journal (searched by its
 *   reference), a success is, and every journaled modification was answered success or unknown;
 * - each holder's credit is the sum of its journaled modifications, and its journal verifies.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { type HolderRef, holderKey, type Storage, type StorageUnavailable } from "@creditlock/core/storage"
import { change, contract, engineWith, wrapStorage } from "@creditlock/test-suite"
import { rawCommand, requireRedis, startServer } from "@creditlock/test-suite/redis-server"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Layer, type Redacted, Schedule } from "effect"
import { RedisStorage } from "../src/index.js"
import * as Scripts from "../src/internal/scripts.js"
import { wholeJournal } from "./Load.js"
import { eventually, proxy, sleep } from "./Tools.js"

// Fails the whole file, before any test is collected, when redis-server or redis-cli is missing.
requireRedis()

const LOCK_TTL_MILLIS = 3_000

const engineOptions = { lockTtl: Duration.millis(LOCK_TTL_MILLIS) }

/** What one call was answered: `ok`, or the error's tag. */
interface Answer {
  readonly op: "lock" | "modify" | "unlock"
  readonly holder: string
  readonly tag: string
  readonly at: number
  readonly reference?: string
  readonly entryId?: string
  readonly delta?: number
}

/** Everything the workers saw, and the violations they noticed on the way. */
interface Record {
  readonly answers: Array<Answer>
  /** A holder found locked while no lock on it could be live but one nobody got. */
  readonly phantoms: Array<string>
}

const failed = (tag: string) => tag === "StorageUnavailable" || tag === "OutcomeUnknown"

/**
 * Loops lock → modify (a unique reference each) → unlock on `ref` until `stop()`. A key whose
 * unlock failed is kept and released first in the next round. When the holder is found locked
 * and the worker holds no key, the lock is somebody's: legitimate only if a lock call on this
 * holder answered OutcomeUnknown within the last TTL (a lock may have been granted to a key
 * nobody has) — else it is recorded as a phantom, and the worker waits for it to expire.
 */
const worker = (ref: HolderRef, record: Record, stop: () => boolean) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const holder = holderKey(ref)
    const note = (answer: Omit<Answer, "holder" | "at">) => record.answers.push({ ...answer, holder, at: Date.now() })
    const tagOf = <A, E extends { readonly _tag: string }>(result: Either.Either<A, E>) =>
      Either.isRight(result) ? "ok" : result.left._tag
    let held: Redacted.Redacted<string> | null = null
    let round = 0
    while (!stop()) {
      round += 1
      if (held !== null) {
        const released: Either.Either<void, { readonly _tag: string }> = yield* Effect.either(engine.unlock(ref, held))
        note({ op: "unlock", tag: tagOf(released) })
        if (Either.isLeft(released)) {
          yield* sleep(20)
          continue
        }
        held = null
      }
      const locked = yield* Effect.either(engine.lock(ref))
      note({ op: "lock", tag: tagOf(locked) })
      if (Either.isLeft(locked)) {
        if (locked.left._tag === "CreditLocked") {
          const since = Date.now() - LOCK_TTL_MILLIS - 500
          const unknown = record.answers.some(
            (a) => a.holder === holder && a.op === "lock" && a.tag === "OutcomeUnknown" && a.at >= since,
          )
          if (!unknown) record.phantoms.push(`${holder} locked after round ${round}`)
          yield* sleep(100)
        } else {
          expect(failed(locked.left._tag), locked.left._tag).toBe(true)
          yield* sleep(20)
        }
        continue
      }
      held = locked.right.lock.key
      const reference = `ref-${randomUUID()}`
      const delta = 1 + (round % 7)
      const modified = yield* Effect.either(engine.modify(ref, held, change("GBP", delta, "settlement", reference)))
      note({
        op: "modify",
        tag: tagOf(modified),
        reference,
        delta,
        ...(Either.isRight(modified) ? { entryId: modified.right.entryId } : {}),
      })
      if (Either.isLeft(modified) && !failed(modified.left._tag)) {
        // A lock that outlived its TTL while the storage was away; nothing else is expected.
        expect(modified.left._tag).toBe("LockNotHeld")
        held = null
      }
    }
    if (held !== null) {
      const key = held
      yield* Effect.retry(engine.unlock(ref, key), { schedule: Schedule.spaced("100 millis"), times: 50 })
    }
  })

/** How the storage answered the engine's commits, counted by outcome. */
type CommitCounts = Map<string, number>

/** The storage, counting the outcome of every commit the engine sends (to see settlement at work). */
const counted = (layer: Layer.Layer<Storage, StorageUnavailable>, counts: CommitCounts) =>
  wrapStorage(layer, (storage) => ({
    commit: (request) =>
      storage.commit(request).pipe(
        Effect.tapBoth({
          onFailure: (e) => Effect.sync(() => counts.set(e._tag, (counts.get(e._tag) ?? 0) + 1)),
          onSuccess: (r) => Effect.sync(() => counts.set(r._tag, (counts.get(r._tag) ?? 0) + 1)),
        }),
      ),
  }))

/**
 * Runs six workers on six idle holders while `disrupt` runs, then checks every answer. The workers
 * reach the server at `port` (the server's own, or a proxy's). With `disruptionFailsCalls`, the
 * run must have seen some calls or commits fail (so that the disruption did happen mid-flight).
 */
const settlementRun = (port: number, disrupt: Effect.Effect<void>, disruptionFailsCalls = true) =>
  Effect.gen(function* () {
    const commits: CommitCounts = new Map()
    const storage = counted(
      RedisStorage.layer({ port, commandTimeout: "1 second", connectTimeout: "1 second" }),
      commits,
    )
    const holders = Array.from({ length: 6 }, () => contract())
    const inspector = yield* Layer.build(engineWith(storage, engineOptions))
    const inspect = <A, E>(effect: Effect.Effect<A, E, CreditEngine>) => Effect.provide(effect, inspector)
    yield* inspect(Effect.forEach(holders, (ref) => Effect.flatMap(CreditEngine, (e) => e.openHolder(ref))))

    const record: Record = { answers: [], phantoms: [] }
    let stopped = false
    const workers = yield* Effect.forEach(holders, (ref) =>
      Effect.fork(
        Effect.provide(
          worker(ref, record, () => stopped),
          engineWith(storage, engineOptions),
        ),
      ),
    )
    // Some successes first, then the disruption in the middle, then some successes again.
    yield* eventually(
      "the workers made progress",
      Effect.sync(() => record.answers.filter((a) => a.op === "modify" && a.tag === "ok").length >= 30),
    )
    yield* disrupt
    const resumedAt = record.answers.length
    yield* eventually(
      "the workers made progress after the disruption",
      Effect.sync(
        () => record.answers.slice(resumedAt).filter((a) => a.op === "modify" && a.tag === "ok").length >= 30,
      ),
      20_000,
    )
    stopped = true
    yield* Fiber.joinAll(workers)

    const answers = record.answers
    expect(record.phantoms).toEqual([])
    if (disruptionFailsCalls) {
      // A call in flight when the server went away either failed, or was a commit the storage
      // answered unknown and the engine settled once the server was back (when every worker was
      // committing at that moment, no answer fails at all): either shows the disruption hit.
      const storageFailures = (commits.get("OutcomeUnknown") ?? 0) + (commits.get("StorageUnavailable") ?? 0)
      expect(
        answers.filter((a) => failed(a.tag)).length + storageFailures,
        "the disruption failed some calls or commits",
      ).toBeGreaterThan(0)
    }
    yield* inspect(
      Effect.forEach(holders, (ref) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const mine = answers.filter((a) => a.holder === holderKey(ref))
          const modifications = (yield* wholeJournal(ref)).filter((e) => e.kind === "modification")
          const byReference = new Map(modifications.map((e) => [e.reference, e]))
          for (const a of mine.filter((x) => x.op === "modify")) {
            const entry = byReference.get(a.reference)
            if (a.tag === "ok") expect(entry?.id, `modify ${a.reference} succeeded`).toBe(a.entryId)
            else if (a.tag !== "OutcomeUnknown")
              expect(entry, `modify ${a.reference} answered ${a.tag}`).toBeUndefined()
          }
          // Every journaled modification was answered success or unknown, never anything else.
          const answered = new Map(mine.filter((a) => a.op === "modify").map((a) => [a.reference, a.tag]))
          for (const e of modifications) expect(["ok", "OutcomeUnknown"]).toContain(answered.get(e.reference))
          const sum = modifications.reduce((s, e) => s + e.changes.reduce((t, c) => t + c.delta, 0), 0)
          expect((yield* engine.getCredit(ref)).current.credit[0]?.amount.value ?? 0).toBe(sum)
          expect((yield* engine.verify(ref)).ok).toBe(true)
          // Nobody holds a key now: the holder is free, unless a lock answered unknown (its TTL runs).
          const free = yield* Effect.either(engine.lock(ref))
          if (Either.isLeft(free)) {
            expect(free.left._tag).toBe("CreditLocked")
            expect(mine.some((a) => a.op === "lock" && a.tag === "OutcomeUnknown")).toBe(true)
          }
        }),
      ),
    )
    const count = (tag: string) => answers.filter((a) => a.tag === tag).length
    return {
      answers: answers.length,
      ok: count("ok"),
      unavailable: count("StorageUnavailable"),
      unknown: count("OutcomeUnknown"),
      commits: Object.fromEntries(commits),
    }
  })

describe("redis: settlement after connection drops", () => {
  it.live(
    "CLIENT KILL TYPE normal, again and again, in the middle of the loops: no answer contradicts the store",
    () =>
      Effect.gen(function* () {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startServer()),
          (s) => Effect.promise(() => s.dispose()),
        )
        const kill = Effect.gen(function* () {
          for (let i = 0; i < 40; i++) {
            const reply = yield* Effect.promise(() => rawCommand(redis.port, "CLIENT KILL TYPE normal"))
            expect(reply).toMatch(/^:\d+$/)
            yield* sleep(25)
          }
        })
        const result = yield* settlementRun(redis.port, kill)
        console.info(`CLIENT KILL run: ${JSON.stringify(result)}`)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "SIGKILL of redis-server (AOF, appendfsync always) and a restart on the same port: no answer contradicts the store",
    () =>
      Effect.gen(function* () {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] })),
          (s) => Effect.promise(() => s.dispose()),
        )
        const crash = Effect.gen(function* () {
          yield* Effect.promise(() => redis.crash())
          yield* sleep(400)
          yield* Effect.promise(() => redis.restart())
        })
        const result = yield* settlementRun(redis.port, crash)
        console.info(`SIGKILL run: ${JSON.stringify(result)}`)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "replies lost after the commit ran (a proxy cuts the connection instead of answering): every one is settled, none is said not applied",
    () =>
      Effect.gen(function* () {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startServer()),
          (s) => Effect.promise(() => s.dispose()),
        )
        const cutter = yield* proxy(redis.port)
        const lose = Effect.gen(function* () {
          for (let i = 0; i < 20; i++) {
            cutter.loseReplyTo(Scripts.commit.sha)
            yield* sleep(40)
          }
        })
        const result = yield* settlementRun(cutter.port, lose, false)
        console.info(`lost-reply run: ${JSON.stringify({ ...result, cuts: cutter.cuts() })}`)
        // Each cut lost the reply of a commit that ran: the storage said OutcomeUnknown, and the
        // engine proved it landed (or answered OutcomeUnknown), never StorageUnavailable.
        expect(cutter.cuts()).toBe(20)
        expect(result.commits.OutcomeUnknown).toBe(20)
      }).pipe(Effect.scoped),
    60_000,
  )
})
