/**
 * The Lua scripts. Each is run with EVALSHA and, when the server answers NOSCRIPT (its script
 * cache was flushed or it restarted), with EVAL, which runs it once and caches it again. Every key
 * a script touches is passed in KEYS, so all of them hash to one slot in a Cluster.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/** A Lua script and its SHA-1, as Redis names it. */
export interface Script {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

const script = (name: string, lua: string): Script => ({
  name,
  lua,
  sha: createHash("sha1").update(lua).digest("hex"),
})

/**
 * The commit: one atomic compare-and-set of a holder.
 *
 * KEYS: 1 holder hash, 2 journal list, 3 entry-id hash, 4 reference hash, 5 the holder's
 * confirmed-claims set, 6… index sets (of the holder's slot on a Cluster; any on a standalone server).
 * ARGV: 1 expected revision or "absent", 2 next revision, 3 encoded document, 4 commit id,
 * 5 index member, 6 entry count, 7 claim count, then the claimed aliases, then four values per
 * entry: JSON, id, "1" or "0" (has a reference), reference.
 *
 * Answers the new revision (committed) or 0 (conflict). A commit whose id is the holder's last
 * commit id was applied already and answers its revision without writing again — a second line of
 * defence: the adapter never sends a commit twice (see `write` in client.ts).
 * Key types are checked before the first write, and the only error the script raises itself is a
 * WRONGTYPE reply from those checks, so an error reply never leaves half a commit.
 */
export const commit: Script = script(
  "commit",
  `local current = redis.call('HMGET', KEYS[1], 'rev', 'cid')
if current[2] == ARGV[4] then return tonumber(current[1]) end
if ARGV[1] == 'absent' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
elseif current[1] ~= ARGV[1] then
  return 0
end
for i = 2, #KEYS do
  local want = 'set'
  if i == 2 then want = 'list' elseif i <= 4 then want = 'hash' end
  local found = redis.call('TYPE', KEYS[i]).ok
  if found ~= 'none' and found ~= want then
    return redis.error_reply('WRONGTYPE creditlock key ' .. KEYS[i] .. ' holds a ' .. found .. ', expected a ' .. want)
  end
end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'doc', ARGV[3], 'cid', ARGV[4])
local claims = tonumber(ARGV[7])
for c = 8, 7 + claims do redis.call('SADD', KEYS[5], ARGV[c]) end
local a = 8 + claims
for _ = 1, tonumber(ARGV[6]) do
  local position = redis.call('RPUSH', KEYS[2], ARGV[a])
  redis.call('HSET', KEYS[3], ARGV[a + 1], position)
  if ARGV[a + 2] == '1' then redis.call('HSET', KEYS[4], ARGV[a + 3], position) end
  a = a + 4
end
for i = 6, #KEYS do redis.call('SADD', KEYS[i], ARGV[5]) end
return tonumber(ARGV[2])
`,
)

/**
 * One journal entry by id or reference. KEYS: 1 the id or reference hash, 2 the journal list.
 * ARGV: 1 the id or reference. Answers the entry's JSON, or nil.
 */
export const findEntry: Script = script(
  "findEntry",
  `local position = redis.call('HGET', KEYS[1], ARGV[1])
if not position then return false end
return redis.call('LINDEX', KEYS[2], tonumber(position) - 1)
`,
)

/** Every script, for loading them when a connection opens. */
export const all: ReadonlyArray<Script> = [commit, findEntry]
