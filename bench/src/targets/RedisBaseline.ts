/**
 * Baseline: a lock → modify → unlock cycle written by hand on ioredis — one Lua script per
 * operation (EVALSHA), random key + SHA-256 in Node, key check, TTL check, minimum check and a
 * journal entry appended in the script — with no library.
 *
 * @module
 */
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { Cluster, Redis } from "ioredis"
import type { Target } from "../Harness.js"
import { countingCommands } from "./RedisCommands.js"

const TTL = 120_000
const sha = (key: string) => createHash("sha256").update(key).digest("base64url")

const LOCK = `
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
if redis.call('HEXISTS', KEYS[1], 'hash') == 1 and tonumber(ARGV[1]) < exp then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[2], 'exp', ARGV[3])
return 1`

const MODIFY = `
local h = redis.call('HMGET', KEYS[1], 'hash', 'exp', 'value')
if not h[1] or tonumber(ARGV[1]) >= tonumber(h[2]) or h[1] ~= ARGV[2] then return redis.error_reply('LOCK') end
local before = tonumber(h[3] or '0')
local delta = tonumber(ARGV[3])
local after = before + delta
if delta < 0 and after < 0 then return redis.error_reply('INSUFFICIENT') end
redis.call('HSET', KEYS[1], 'value', after)
redis.call('RPUSH', KEYS[2], cjson.encode({id = ARGV[4], at = ARGV[1], delta = delta, before = before, after = after}))
return after`

const UNLOCK = `
local h = redis.call('HMGET', KEYS[1], 'hash', 'exp')
if h[1] and tonumber(ARGV[1]) < tonumber(h[2]) and h[1] == ARGV[2] then redis.call('HDEL', KEYS[1], 'hash', 'exp') end
return 1`

interface Scripts {
  blLock(holder: string, now: number, hash: string, exp: number): Promise<number>
  blModify(holder: string, journal: string, now: number, hash: string, delta: number, id: string): Promise<number>
  blUnlock(holder: string, now: number, hash: string): Promise<number>
}

/** Where the baseline connects: a standalone server's URL, or a Cluster's nodes. */
export type RedisConnection = string | ReadonlyArray<{ readonly host: string; readonly port: number }>

/**
 * A hand-written Redis implementation against `connection`; keys under `prefix`, a holder's two
 * keys tagged by its id (one Cluster slot). Its round trips are the commands it sends.
 */
export const redisBaseline = (connection: RedisConnection, prefix: string): Target => {
  const { client, roundTrips } = countingCommands(
    typeof connection === "string"
      ? new Redis(connection, { lazyConnect: false, maxRetriesPerRequest: 1 })
      : new Cluster([...connection], { redisOptions: { maxRetriesPerRequest: 1 } }),
  )
  const redis = client as (Redis | Cluster) & Scripts
  redis.defineCommand("blLock", { numberOfKeys: 1, lua: LOCK })
  redis.defineCommand("blModify", { numberOfKeys: 2, lua: MODIFY })
  redis.defineCommand("blUnlock", { numberOfKeys: 1, lua: UNLOCK })
  const holder = (id: string) => `${prefix}{${id}}:h`
  const journal = (id: string) => `${prefix}{${id}}:j`
  return {
    name: "raw ioredis + Lua (baseline)",
    roundTrips,
    open: async (id) => {
      await redis.hsetnx(holder(id), "value", 0)
    },
    lock: async (id) => {
      const key = randomBytes(16).toString("base64url")
      const now = Date.now()
      return (await redis.blLock(holder(id), now, sha(key), now + TTL)) === 1 ? { key } : "locked"
    },
    modify: async (id, key, delta) => {
      await redis.blModify(holder(id), journal(id), Date.now(), sha(key), delta, randomUUID())
    },
    unlock: async (id, key) => {
      await redis.blUnlock(holder(id), Date.now(), sha(key))
    },
    read: async (id) => ({
      value: Number((await redis.hget(holder(id), "value")) ?? 0),
      modifications: await redis.llen(journal(id)),
    }),
    close: async () => {
      await redis.quit()
    },
  }
}
