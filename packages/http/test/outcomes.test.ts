/**
 * The three outcomes of a write over HTTP: applied (2xx), not applied
 * (503 STORAGE_UNAVAILABLE), unknown (503 OUTCOME_UNKNOWN); and a customer unlock that stopped
 * part-way (503 UNLOCK_INCOMPLETE). Each 503 carries `Retry-After` and a detail that says what to
 * do; the typed client decodes them back into the engine's error classes.
 */
import { type HolderRef, OutcomeUnknown, Storage, StorageUnavailable, UnlockIncomplete } from "@creditlock/core"
import { holderKey } from "@creditlock/core/storage"
import { MemoryStorage } from "@creditlock/memory"
import { HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Layer, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { OutcomeUnknownProblem, problemBody, problemResponse, UnlockIncompleteProblem } from "../src/Problem.js"
import { ADMIN, adminJson, bearer, type Harness, holderPath, problemOf, request, startServer } from "./harness.js"

const contract = (customerId: string, holderId: string): HolderRef => ({
  customerId,
  holderType: "contracts",
  holderId,
})

const bodyOf = async (response: HttpServerResponse.HttpServerResponse) => {
  const web = HttpServerResponse.toWeb(response)
  return {
    status: web.status,
    headers: web.headers,
    json: (await web.json()) as { error: Array<Record<string, unknown>> },
  }
}

describe("problem mapping", () => {
  it("answers OutcomeUnknown with 503 OUTCOME_UNKNOWN, Retry-After, its entryId and what to do", async () => {
    const error = new OutcomeUnknown({ detail: "the reply was lost", entryId: "e-123" })
    const { status, headers, json } = await bodyOf(problemResponse(error, 7))
    expect(status).toBe(503)
    expect(headers.get("retry-after")).toBe("7")
    const [item] = json.error
    expect(item).toMatchObject({ status: "503", title: "Service Unavailable", code: "OUTCOME_UNKNOWN", retryAfter: 7 })
    expect(item?.entryId).toBe("e-123")
    expect(item?.detail).toContain("may or may not have been applied")
    expect(item?.detail).toContain("same Idempotency-Key")
    expect(item?.detail).toContain("journal for entry e-123")
  })

  it("answers OutcomeUnknown without an entry (a lock) with advice about the lock, and no entryId", async () => {
    const { status, headers, json } = await bodyOf(problemResponse(new OutcomeUnknown({ detail: "lost" }), 1))
    expect(status).toBe(503)
    expect(headers.get("retry-after")).toBe("1")
    expect(json.error[0]).not.toHaveProperty("entryId")
    expect(json.error[0]?.code).toBe("OUTCOME_UNKNOWN")
    expect(json.error[0]?.detail).toContain("expires with its TTL")
  })

  it("answers UnlockIncomplete with 503 UNLOCK_INCOMPLETE, Retry-After, and the holders released, pending and unknown", async () => {
    const error = new UnlockIncomplete({
      detail: "part-way",
      customerId: "cus_1",
      released: [{ holder: contract("cus_1", "sub_1"), entryId: "e-1" }],
      pending: [contract("cus_1", "sub_2"), { customerId: "cus_1", holderType: "customers", holderId: "cus_1" }],
      unknown: [contract("cus_1", "sub_3")],
    })
    const { status, headers, json } = await bodyOf(problemResponse(error, 3))
    expect(status).toBe(503)
    expect(headers.get("retry-after")).toBe("3")
    expect(json.error[0]).toMatchObject({
      status: "503",
      code: "UNLOCK_INCOMPLETE",
      retryAfter: 3,
      customerId: "cus_1",
      released: [{ holder: { type: "contract", id: "sub_1" }, entryId: "e-1" }],
      pending: [
        { type: "contract", id: "sub_2" },
        { type: "customer", id: "cus_1" },
      ],
      unknown: [{ type: "contract", id: "sub_3" }],
    })
    expect(json.error[0]?.detail).toContain("Repeat the same request")
    expect(json.error[0]?.detail).toContain("not released on 2")
    expect(json.error[0]?.detail).toContain("perhaps released on 1")
  })

  it("encodes both as the server writes them, and decodes them back into the engine's classes", () => {
    const unknown = new OutcomeUnknown({ detail: "lost", entryId: "e-9" })
    expect(Schema.encodeSync(OutcomeUnknownProblem)(unknown)).toEqual(problemBody(unknown, 1))
    const decoded = Schema.decodeUnknownSync(OutcomeUnknownProblem)(problemBody(unknown, 1))
    expect(decoded).toBeInstanceOf(OutcomeUnknown)
    expect(decoded.entryId).toBe("e-9")

    const incomplete = new UnlockIncomplete({
      detail: "part-way",
      customerId: "cus_1",
      released: [{ holder: contract("cus_1", "sub_1"), entryId: "e-1" }],
      pending: [{ customerId: "cus_1", holderType: "customers", holderId: "cus_1" }],
      unknown: [contract("cus_1", "sub_2")],
    })
    expect(Schema.encodeSync(UnlockIncompleteProblem)(incomplete)).toEqual(problemBody(incomplete, 1))
    const back = Schema.decodeUnknownSync(UnlockIncompleteProblem)(problemBody(incomplete, 1))
    expect(back).toBeInstanceOf(UnlockIncomplete)
    expect(back.released).toEqual(incomplete.released)
    expect(back.pending).toEqual(incomplete.pending)
    expect(back.unknown).toEqual(incomplete.unknown)
  })
})

/** Faults of the storage under test, flipped by the tests. */
interface Faults {
  /** The next this-many commits are applied, and then answered as if their reply were lost. */
  loseReplies: number
  /** Once a reply is lost, the storage stops answering (so the engine cannot prove anything). */
  goDownAfterLoss: boolean
  down: boolean
  /** Commits of these holders fail without being applied. */
  refuse: Array<HolderRef>
}

const faulty = (faults: Faults): Layer.Layer<Storage> =>
  Layer.effect(
    Storage,
    Effect.gen(function* () {
      const inner = yield* Storage
      const unavailable = new StorageUnavailable({ detail: "the test storage is down" })
      const guarded = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.suspend(
          (): Effect.Effect<A, E | StorageUnavailable> => (faults.down ? Effect.fail(unavailable) : effect),
        )
      return Storage.of({
        load: (ref) => guarded(inner.load(ref)),
        commit: (commit) =>
          guarded(
            Effect.suspend(() => {
              if (faults.refuse.some((ref) => holderKey(ref) === holderKey(commit.ref))) return Effect.fail(unavailable)
              if (faults.loseReplies === 0) return inner.commit(commit)
              faults.loseReplies--
              return Effect.zipRight(
                inner.commit(commit),
                Effect.suspend(() => {
                  if (faults.goDownAfterLoss) faults.down = true
                  return Effect.fail(new OutcomeUnknown({ detail: "the test storage lost the reply" }))
                }),
              )
            }),
          ),
        lookup: (key) => guarded(inner.lookup(key)),
        findEntry: (ref, selector) => guarded(inner.findEntry(ref, selector)),
        journal: (ref, range) => guarded(inner.journal(ref, range)),
        ping: guarded(inner.ping),
      })
    }),
  ).pipe(Layer.provide(MemoryStorage.layer()))

describe("outcomes end to end", () => {
  const faults: Faults = { loseReplies: 0, goDownAfterLoss: false, down: false, refuse: [] }
  let h: Harness
  beforeAll(async () => {
    h = await startServer({
      storage: faulty(faults),
      // A short settle, so that an unprovable outcome is answered quickly.
      engine: { lockTtl: Duration.hours(1), settleTimeout: Duration.millis(200) },
    })
  })
  afterAll(async () => {
    await h.close()
  })
  const reset = () => {
    faults.loseReplies = 0
    faults.goDownAfterLoss = false
    faults.down = false
    faults.refuse = []
  }

  const open = (ref: HolderRef) => request(h.base, "PUT", holderPath(ref), { headers: adminJson })
  const lock = async (ref: HolderRef) => {
    const r = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
    expect(r.status, r.text).toBe(201)
    return (r.json as { data: { lock: { key: string } } }).data.lock.key
  }
  const modify = (ref: HolderRef, key: string, value: number, reference: string) =>
    request(h.base, "PUT", `${holderPath(ref)}/_modify`, {
      headers: { ...adminJson, "x-lock-key": key, "idempotency-key": reference },
      body: JSON.stringify({
        reason: "outcome test",
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value } }],
      }),
    })
  const journal = async (ref: HolderRef) => {
    const r = await request(h.base, "GET", `${holderPath(ref)}/journal`, { headers: bearer(ADMIN) })
    return (r.json as { data: { entries: Array<{ id: string; kind: string }> } }).data.entries
  }
  const credit = async (ref: HolderRef) => {
    const r = await request(h.base, "GET", holderPath(ref), { headers: bearer(ADMIN) })
    return (r.json as { data: { current: { credit: Array<{ amount: { value: number } }> } } }).data.current.credit
  }

  it("a modification whose reply was lost but which is proven applied answers 200, applied once", async () => {
    const ref = contract("cus_outcome", "lost_reply")
    await open(ref)
    const key = await lock(ref)
    faults.loseReplies = 1
    try {
      const r = await modify(ref, key, 250, "lost-1")
      expect(r.status, r.text).toBe(200)
    } finally {
      reset()
    }
    expect((await credit(ref))[0]?.amount.value).toBe(250)
    expect((await journal(ref)).filter((e) => e.kind === "modification")).toHaveLength(1)
  })

  it("one whose outcome cannot be proven answers 503 OUTCOME_UNKNOWN; a retry with the same Idempotency-Key applies it exactly once", async () => {
    const ref = contract("cus_outcome", "unknown")
    await open(ref)
    const key = await lock(ref)
    faults.loseReplies = 1
    faults.goDownAfterLoss = true
    let unknown: Awaited<ReturnType<typeof request>>
    try {
      unknown = await modify(ref, key, 400, "unknown-1")
    } finally {
      reset()
    }
    expect(unknown.status, unknown.text).toBe(503)
    expect(unknown.headers.get("retry-after")).toBe("1")
    const problem = problemOf(unknown.json)
    expect(problem?.code).toBe("OUTCOME_UNKNOWN")
    expect(problem?.detail).toContain("same Idempotency-Key")
    const entryId = (unknown.json as { error: Array<{ entryId?: string }> }).error[0]?.entryId
    expect(entryId).toEqual(expect.any(String))
    // It had in fact been applied: the journal shows the entry the problem names…
    expect((await journal(ref)).map((e) => e.id)).toContain(entryId)
    // …and the retry the detail recommends returns that result without applying it again.
    const retry = await modify(ref, key, 400, "unknown-1")
    expect(retry.status, retry.text).toBe(200)
    expect((retry.json as { meta: { entryId: string } }).meta.entryId).toBe(entryId)
    expect((await credit(ref))[0]?.amount.value).toBe(400)
    expect((await journal(ref)).filter((e) => e.kind === "modification")).toHaveLength(1)
  })

  it("a lock whose outcome cannot be proven answers 503 OUTCOME_UNKNOWN; the customer unlock the detail names frees it", async () => {
    const ref = contract("cus_outcome_lock", "unknown_lock")
    await open(ref)
    faults.loseReplies = 1
    faults.goDownAfterLoss = true
    let unknown: Awaited<ReturnType<typeof request>>
    try {
      unknown = await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })
    } finally {
      reset()
    }
    expect(unknown.status, unknown.text).toBe(503)
    expect(unknown.headers.get("retry-after")).toBe("1")
    expect(problemOf(unknown.json)?.code).toBe("OUTCOME_UNKNOWN")
    expect(problemOf(unknown.json)?.detail).toContain("PATCH /customer/unlock")
    // The lock landed, with a key nobody has.
    expect((await request(h.base, "PUT", `${holderPath(ref)}/_lock`, { headers: bearer(ADMIN) })).status).toBe(423)
    const unlocked = await request(h.base, "PATCH", "/customer/unlock", {
      headers: adminJson,
      body: JSON.stringify({ customer_id: ref.customerId }),
    })
    expect(unlocked.status, unlocked.text).toBe(200)
    await lock(ref)
  })

  it("a customer unlock that fails part-way answers 503 UNLOCK_INCOMPLETE; repeating it releases the rest, once", async () => {
    const a = contract("cus_partial", "a")
    const b = contract("cus_partial", "b")
    for (const ref of [a, b]) {
      await open(ref)
      await lock(ref)
    }
    faults.refuse = [b]
    const unlock = () =>
      request(h.base, "PATCH", "/customer/unlock", {
        headers: adminJson,
        body: JSON.stringify({ customer_id: "cus_partial" }),
      })
    let partial: Awaited<ReturnType<typeof request>>
    try {
      partial = await unlock()
    } finally {
      reset()
    }
    expect(partial.status, partial.text).toBe(503)
    expect(partial.headers.get("retry-after")).toBe("1")
    expect(problemOf(partial.json)?.code).toBe("UNLOCK_INCOMPLETE")
    expect(problemOf(partial.json)?.detail).toContain("Repeat the same request")
    const releasedA = (await journal(a)).find((e) => e.kind === "admin-unlock")
    expect(partial.json).toMatchObject({
      error: [
        {
          customerId: "cus_partial",
          released: [{ holder: { type: "contract", id: "a" }, entryId: releasedA?.id }],
          pending: [{ type: "contract", id: "b" }],
          unknown: [],
        },
      ],
    })
    const again = await unlock()
    expect(again.status, again.text).toBe(200)
    expect((await journal(a)).filter((e) => e.kind === "admin-unlock")).toHaveLength(1)
    expect((await journal(b)).filter((e) => e.kind === "admin-unlock")).toHaveLength(1)
    await lock(a)
    await lock(b)
  })
})
