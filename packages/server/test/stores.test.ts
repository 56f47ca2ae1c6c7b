/**
 * The same end-to-end flow over HTTP, through the server program's layer, on every store
 * `CREDIT_STORE` can name: memory, SQLite, Redis standalone, Redis Cluster and PostgreSQL.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freshDatabase } from "@creditlock/test-suite/postgres-server"
import { startCluster, startServer as startRedis } from "@creditlock/test-suite/redis-server"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { parseStore } from "../src/Store.js"
import { ADMIN, adminJson, bearer, holderPath, request, startServer, TRACK } from "./harness.js"

const flow = async (store: string) => {
  const parsed = parseStore(store)
  if (Either.isLeft(parsed)) throw new Error(parsed.left)
  const h = await startServer(parsed.right)
  try {
    const ref = { customerId: "cus_store", holderType: "contracts", holderId: "sub_store" } as const
    const path = holderPath(ref)
    const opened = await request(h.base, "PUT", path, {
      headers: adminJson,
      body: JSON.stringify({ balanceGroupId: "bg-store" }),
    })
    expect(opened.status).toBe(201)
    const locked = await request(h.base, "PUT", `${path}/_lock`, { headers: bearer(ADMIN) })
    const key = (locked.json as { data: { lock: { key: string } } }).data.lock.key
    const modify = (value: number, reference: string) =>
      request(h.base, "PUT", `${path}/_modify`, {
        headers: { ...adminJson, "x-lock-key": key, "idempotency-key": reference },
        body: JSON.stringify({
          reason: "flow",
          modifications: [{ type: "monetary", changeAmount: { currencyCode: "USD", value } }],
        }),
      })
    expect((await modify(1000, "r-1")).status).toBe(200)
    expect((await modify(-1500, "r-2")).status).toBe(422)
    const limits = await request(
      h.base,
      "POST",
      "/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/bg-store",
      {
        headers: adminJson,
        body: JSON.stringify({ resourceId: 840, limit: "10.00" }),
      },
    )
    expect(limits.text).toBe("Ok")
    expect((await modify(-1500, "r-3")).status).toBe(200)
    const replay = await modify(-1500, "r-3")
    expect(replay.status).toBe(200)
    const unlock = await request(h.base, "PATCH", "/customer/unlock", {
      headers: {
        "api-key": TRACK.token,
        "api-username": TRACK.username,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "orderid=r-1",
    })
    expect(unlock.json).toBe(true)
    const credit = await request(h.base, "GET", path, { headers: bearer(ADMIN) })
    expect(credit.json).toMatchObject({
      data: { current: { credit: [{ amount: { currencyCode: "USD", value: -500 } }] } },
    })
    const journal = await request(h.base, "GET", `${path}/journal`, { headers: bearer(ADMIN) })
    expect((journal.json as { data: { entries: Array<{ kind: string }> } }).data.entries.map((e) => e.kind)).toEqual([
      "opened",
      "modification",
      "limits",
      "modification",
      "admin-unlock",
    ])
    expect((await request(h.base, "GET", "/healthz")).status).toBe(200)
  } finally {
    await h.close()
  }
}

describe("stores over HTTP", () => {
  it("memory:", async () => {
    await flow("memory:")
  })

  it("sqlite:<path>", async () => {
    const dir = mkdtempSync(join(tmpdir(), "creditlock-server-sqlite-"))
    try {
      await flow(`sqlite:${join(dir, "a", "b", "credit.sqlite")}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("redis://host:port", async () => {
    const redis = await startRedis()
    try {
      await flow(`redis://127.0.0.1:${redis.port}`)
    } finally {
      await redis.dispose()
    }
  })

  it("postgres://user@host:port/database", async () => {
    const database = await freshDatabase()
    try {
      await flow(database.url)
      // postgresql:// names the same store; the second server finds the first one's holder open.
      const parsed = parseStore(database.url.replace("postgres://", "postgresql://"))
      if (Either.isLeft(parsed)) throw new Error(parsed.left)
      const h = await startServer(parsed.right)
      try {
        const path = holderPath({ customerId: "cus_store", holderType: "contracts", holderId: "sub_store" })
        const credit = await request(h.base, "GET", path, { headers: bearer(ADMIN) })
        expect(credit.json).toMatchObject({
          data: { current: { credit: [{ amount: { currencyCode: "USD", value: -500 } }] } },
        })
      } finally {
        await h.close()
      }
    } finally {
      await database.drop()
    }
  })

  it("redis-cluster://host:port,host:port,host:port", async () => {
    const cluster = await startCluster()
    try {
      await flow(`redis-cluster://${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(",")}`)
    } finally {
      await cluster.dispose()
    }
  })
})
