/**
 * Deeply nested JSON: about 8,000 nested arrays — 16 KB, well within the
 * body limit — used to overflow the stack while the decode error was formatted, answering 500 to
 * any caller with any valid credential (the body is read before authorisation). The guard now
 * bounds nesting at 64 levels on the raw text, before parsing: deeper → 400, nothing changed, on
 * every JSON route and for every caller; 64 levels still reach normal validation.
 */
import { CreditEngine, type HolderRef } from "@creditlock/core"
import { Effect } from "effect"
import fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { exceedsJsonDepth, MAX_JSON_DEPTH } from "../src/internal/jsonDepth.js"
import { ADMIN, bearer, holderPath, LIMITED, problemOf, request, serverPerFile, snapshot } from "./harness.js"

const h = serverPerFile()

const HOLDER: HolderRef = { customerId: "cus_nest", holderType: "contracts", holderId: "nest_1" }
const ALIAS = "bg-nest-1"
const LIMITS_PATH = `/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/${ALIAS}`

beforeAll(async () => {
  await h.run(
    Effect.gen(function* () {
      const engine = yield* CreditEngine
      yield* engine.openHolder(HOLDER, { balanceGroupId: ALIAS })
      yield* engine.lock(HOLDER)
    }),
  )
})

/** Every route that reads a JSON body, with the headers it needs besides the credential. */
const jsonRoutes: ReadonlyArray<{
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
}> = [
  { method: "PUT", path: holderPath(HOLDER), headers: {} },
  { method: "PUT", path: `${holderPath(HOLDER)}/_modify`, headers: { "x-lock-key": "not-the-key" } },
  { method: "PUT", path: `${holderPath(HOLDER)}/_unlock`, headers: {} },
  { method: "PATCH", path: "/customer/unlock", headers: {} },
  { method: "POST", path: LIMITS_PATH, headers: {} },
]

const callers: ReadonlyArray<readonly [string, Record<string, string>]> = [
  ["an administrator", bearer(ADMIN)],
  ["a credential restricted to another customer", bearer(LIMITED)],
  ["no credential", {}],
]

const arrays = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`
const objects = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
const mixed = (depth: number) => `${'[{"a":'.repeat(depth / 2)}1${"}]".repeat(depth / 2)}`

/** The whole stored state of the seeded holder and how many commits there were. */
const state = async () => ({ commits: h.control.commits, holder: await h.run(snapshot(HOLDER)) })

const expectTooDeep = (r: { status: number; json: unknown; text: string }) => {
  expect(r.status, r.text.slice(0, 300)).toBe(400)
  const problem = problemOf(r.json)
  expect(problem?.code).toBe("INVALID_REQUEST")
  expect(problem?.detail).toContain(`more than ${MAX_JSON_DEPTH} levels`)
}

describe("JSON nested deeper than 64 levels", () => {
  const bodies: ReadonlyArray<readonly [string, string]> = [
    ["8,000 nested arrays (16 KB)", arrays(8000)],
    ["8,000 nested objects", objects(8000)],
    ["8,000 levels of arrays and objects", mixed(8000)],
    ["8,000 unclosed arrays", "[".repeat(8000)],
    ["65 nested arrays", arrays(65)],
    ["a valid body with a member nested 65 deep", `{"reason":"r","modifications":${arrays(64)}}`],
  ]

  for (const [caller, credential] of callers) {
    it(`is refused with 400 on every JSON route for ${caller}, changing nothing`, async () => {
      const before = await state()
      for (const route of jsonRoutes) {
        for (const [label, body] of bodies) {
          expect(body.length).toBeLessThan(64 * 1024)
          const r = await request(h.base, route.method, route.path, {
            headers: { ...credential, ...route.headers, "content-type": "application/json" },
            body,
          })
          expect(r.status, `${route.method} ${route.path}, ${label}`).toBe(400)
          expectTooDeep(r)
        }
      }
      expect(await state()).toEqual(before)
    })
  }

  it("is refused without a content type as well (415, before it is parsed)", async () => {
    const before = await state()
    for (const route of jsonRoutes) {
      // Bytes, so that fetch adds no content type of its own.
      const r = await request(h.base, route.method, route.path, {
        headers: { ...bearer(ADMIN), ...route.headers },
        body: new TextEncoder().encode(arrays(8000)),
      })
      expect(r.status).toBe(415)
      expect((r.json as { error: Array<{ code: string }> }).error[0]?.code).toBe("UNSUPPORTED_MEDIA_TYPE")
    }
    expect(await state()).toEqual(before)
  })
})

describe("JSON nested at most 64 levels", () => {
  const extensionOf = (depth: number): unknown => {
    let value: unknown = "leaf"
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { nested: value }
    return value
  }

  it("is accepted: a credit-limit body 64 levels deep is stored, one 65 deep is refused", async () => {
    const at = (extensionDepth: number) =>
      request(h.base, "POST", LIMITS_PATH, {
        headers: { ...bearer(ADMIN), "content-type": "application/json" },
        body: JSON.stringify({ resourceId: 826, limit: "1.00", extension: extensionOf(extensionDepth) }),
      })
    const before = await state()
    // The body object is one level, the extension the other 64.
    expectTooDeep(await at(MAX_JSON_DEPTH))
    expect(await state()).toEqual(before)
    const accepted = await at(MAX_JSON_DEPTH - 1)
    expect(accepted.status, accepted.text).toBe(201)
    const read = await request(h.base, "GET", LIMITS_PATH, { headers: bearer(ADMIN) })
    const limits = (read.json as { data: { limits: Array<{ extension: unknown }> } }).data.limits
    expect(limits[0]?.extension).toEqual(extensionOf(MAX_JSON_DEPTH - 1))
  })

  it("reaches normal validation, whose answer is about the fields, not the nesting", async () => {
    const r = await request(h.base, "PUT", `${holderPath(HOLDER)}/_unlock`, {
      headers: { ...bearer(ADMIN), "content-type": "application/json" },
      body: `{"key":${arrays(MAX_JSON_DEPTH - 1)}}`,
    })
    expect(r.status).toBe(400)
    expect(problemOf(r.json)?.code).toBe("INVALID_REQUEST")
    expect(problemOf(r.json)?.detail).not.toContain("levels")
  })

  it("counts no bracket inside a string, escaped quotes included", async () => {
    const reason = `${"[".repeat(400)}\\"${"{".repeat(400)}\\\\`
    const r = await request(h.base, "PUT", `${holderPath(HOLDER)}/_modify`, {
      headers: { ...bearer(ADMIN), "content-type": "application/json", "x-lock-key": "not-the-key" },
      body: `{"reason":"${reason}","modifications":[{"type":"monetary","changeAmount":{"currencyCode":"GBP","value":1}}]}`,
    })
    // Valid and shallow: refused only because the key is not the live lock's.
    expect(r.status, r.text).toBe(423)
    expect(problemOf(r.json)?.code).toBe("LOCK_KEY_MISMATCH")
  })
})

describe("exceedsJsonDepth", () => {
  type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

  const depthOf = (value: Json): number => {
    if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf))
    if (typeof value === "object" && value !== null) return 1 + Math.max(0, ...Object.values(value).map(depthOf))
    return 0
  }

  /** Strings full of what a naive scan would miscount: brackets, quotes, backslashes. */
  const tricky = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a", ":", ",", " ", "\n") })
  const leaf: fc.Arbitrary<Json> = fc.oneof(tricky, fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>)

  /** A value nested `spine` levels deep along one path, with shallow siblings on the way. */
  const nested: fc.Arbitrary<Json> = fc
    .tuple(
      leaf,
      fc.array(fc.tuple(fc.constantFrom("array", "object"), tricky, fc.option(leaf, { nil: undefined })), {
        maxLength: 100,
      }),
    )
    .map(([inner, spine]) =>
      spine.reduce<Json>(
        (value, [kind, key, sibling]) =>
          kind === "array"
            ? sibling === undefined
              ? [value]
              : [sibling, value]
            : { ...(sibling === undefined ? {} : { [`${key}'`]: sibling }), [key]: value },
        inner,
      ),
    )

  it("agrees with the depth of the parsed value, whatever the strings and whitespace", () => {
    fc.assert(
      fc.property(nested, fc.integer({ min: 0, max: 110 }), fc.constantFrom(0, 1, "\t"), (value, max, indent) => {
        const text = JSON.stringify(value, null, indent)
        expect(exceedsJsonDepth(text, max)).toBe(depthOf(value) > max)
      }),
      { numRuns: 2000 },
    )
  })

  it("never throws and never recurses, whatever the text", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a"), maxLength: 2000 }), (text) => {
        expect(typeof exceedsJsonDepth(text)).toBe("boolean")
      }),
    )
    expect(exceedsJsonDepth("[".repeat(1_000_000))).toBe(true)
    expect(exceedsJsonDepth(`"${"[".repeat(1_000_000)}"`)).toBe(false)
  })
})
