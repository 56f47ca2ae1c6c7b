/**
 * The Redis `Storage`, on ioredis, for a standalone server or a Redis Cluster.
 *
 * A holder is one hash (its revision and encoded document), its journal one list, with two hashes
 * finding an entry by id or by idempotency reference; all of them, and the set of the customer's
 * holders, carry the customer id as their hash tag, so in a Cluster they share one slot. A commit
 * is one Lua script over those keys: compare the revision, write the document, append the
 * entries, add the same-slot index members — all of it or nothing.
 *
 * Lookups by a value other than the customer id (subscription, order id or reference) live in
 * sets tagged by that value, in other slots; a balance-group alias is claimed by a string key
 * tagged by the alias, set once (SET NX) to the holder that claimed it, and counts as that
 * holder's once the commit script confirmed it in the holder's own slot. On a standalone server
 * the commit script writes every index key itself (one round trip, all or nothing). On a Cluster,
 * where a script reaches only its own slot, a commit writes its claims and then its pointers in
 * other slots before it runs its script, so a crash in between leaves at most a pointer naming a
 * holder that does not (yet) match — which the engine checks and discards — or an unconfirmed
 * claim, which no lookup answers; never a committed key without its pointer or claim. Claims come
 * before the script on both.
 * An unconfirmed claim stays reserved for its holder: the same holder claiming the alias again
 * succeeds, another one is answered `Claimed`. {@link rebuildIndexes} restores pointers and
 * claims from the holders and journals.
 *
 * Every call is bounded by `commandTimeout`. A commit that fails is classified: StorageUnavailable
 * when it was certainly not applied (its script never left the process, or Redis refused it before
 * running it: NOSCRIPT then an error, WRONGTYPE, TRYAGAIN, CLUSTERDOWN, MOVED, …; a failed claim or
 * pointer write, which comes before the script), OutcomeUnknown when it may have been (sent, then
 * a timeout or a closed connection). No command is ever sent twice or after its call answered:
 * the library's clients are configured not to resend, a caller's client is checked for settings
 * that would, and every write is guarded (see `write` in internal/client.ts). Reads fail with
 * StorageUnavailable. The adapter decides nothing: every rule lives in @creditlock/core.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import {
  type CommitRequest,
  type CommitResult,
  decodeDocument,
  type EntrySelector,
  encodeDocument,
  entryIndexKeys,
  type HolderRef,
  holderIndexKeys,
  holderKey,
  type IndexKey,
  type JournalEntry,
  type JournalRange,
  type LookupKey,
  type OutcomeUnknown,
  Storage,
  StorageUnavailable,
  type StoredHolder,
} from "@creditlock/core/storage"
import { Config, type ConfigError, Duration, Effect, Layer, Option, Redacted, type Scope } from "effect"
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import {
  attempt,
  awaitReady,
  type Client,
  closeClient,
  dataNodes,
  evalScript,
  isCluster,
  resendRisks,
  unavailable,
  type WriteFailure,
  write,
  writeError,
  writeScript,
} from "./internal/client.js"
import { type KeyLayout, keyLayout, validPrefix } from "./internal/keys.js"
import * as Scripts from "./internal/scripts.js"

/** A standalone ioredis client (`Redis`) or a Cluster client (`Cluster`). */
export type RedisClient = Redis | Cluster

/** The default `connectTimeout`: 5 seconds. */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)

/** The default `commandTimeout`: 5 seconds. */
export const DEFAULT_COMMAND_TIMEOUT: Duration.Duration = Duration.seconds(5)

/** Settings that apply to the library's own client and to a caller's. */
export interface AdapterOptions {
  /**
   * Prepended to every key, so several deployments can share one Redis (default: none). It must
   * not contain `{` or `}`, which would change the keys' hash tag.
   */
  readonly keyPrefix?: string | undefined
  /**
   * How long one Redis call may take before it fails (a read or an unsent write with
   * StorageUnavailable, a write that was sent with OutcomeUnknown); default 5 seconds.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long to wait for the connection to become ready when the storage is built; default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * Options of {@link make} and {@link layer}. With `nodes`, a Cluster client is opened on those
 * startup nodes (and `url`, `host`, `port` and `db` are not used); otherwise a standalone client on
 * `url`, or on `host`/`port` (default 127.0.0.1:6379). A setting that is not valid (a key prefix
 * with a brace, a timeout that is not a duration) fails the layer with StorageUnavailable.
 */
export interface RedisStorageOptions extends AdapterOptions {
  /**
   * `redis://[[username][:password]@]host[:port][/db]` or `rediss://…` (TLS). A `Redacted` URL
   * keeps a password in it out of logs. Settings in the URL win over `host`, `port`, `db`,
   * `username` and `password`.
   */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** The standalone server's host when no `url` is given (default 127.0.0.1). */
  readonly host?: string | undefined
  /** The standalone server's port when no `url` is given (default 6379). */
  readonly port?: number | undefined
  /** The database number (standalone only; a Cluster has only database 0). */
  readonly db?: number | undefined
  /** Cluster startup nodes, as `"host:port"` or `{ host, port }`; any subset of the masters will do. */
  readonly nodes?: ReadonlyArray<string | { readonly host: string; readonly port: number }> | undefined
  /** The ACL user name, if any. */
  readonly username?: string | undefined
  /** The password; unwrapped only when it is handed to ioredis. */
  readonly password?: Redacted.Redacted<string> | undefined
  /** Connect with TLS (also implied by a `rediss://` URL). */
  readonly tls?: boolean | undefined
}

/** The settings in force, with durations in milliseconds. */
interface Settings {
  readonly layout: KeyLayout
  readonly commandMillis: number
  readonly connectMillis: number
}

/** Node's timers take at most a signed 32-bit number of milliseconds (longer ones fire at once). */
const MAX_TIMER_MILLIS = 2_147_483_647

const millis = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.Duration,
): Effect.Effect<number, StorageUnavailable> =>
  Option.match(Duration.decodeUnknown(input ?? fallback), {
    onNone: () => Effect.fail(new StorageUnavailable({ detail: `${name} is not a duration` })),
    onSome: (duration) =>
      Effect.succeed(Math.min(MAX_TIMER_MILLIS, Math.max(1, Math.round(Duration.toMillis(duration))))),
  })

const settingsOf = (options: AdapterOptions): Effect.Effect<Settings, StorageUnavailable> =>
  Effect.gen(function* () {
    const prefix = options.keyPrefix ?? ""
    if (!validPrefix(prefix)) {
      return yield* new StorageUnavailable({ detail: "keyPrefix must not contain '{' or '}'" })
    }
    return {
      layout: keyLayout(prefix),
      commandMillis: yield* millis("commandTimeout", options.commandTimeout, DEFAULT_COMMAND_TIMEOUT),
      connectMillis: yield* millis("connectTimeout", options.connectTimeout, DEFAULT_CONNECT_TIMEOUT),
    }
  })

/**
 * The ioredis options the library's own clients use, and that a caller's standalone client given
 * to {@link fromClient} must have (it checks them): spread them into your own options. With them
 * a command is sent once, when it is called, or never (read in ioredis 5's
 * `built/redis/event_handler.js` and `built/Redis.js`):
 * - `enableOfflineQueue: false`: while the connection is not ready a call fails at once ("Stream
 *   isn't writeable") instead of waiting in a queue that is flushed after a reconnection;
 * - `autoResendUnfulfilledCommands: false`: the commands in flight when a connection closes are
 *   not written again when it is ready again (`readyHandler` drops `prevCommandQueue`);
 * - `maxRetriesPerRequest: 0`: those commands are rejected as soon as the connection closes
 *   (`closeHandler` flushes the queues when `retryAttempts % (maxRetriesPerRequest + 1) === 0`),
 *   so their callers learn at once that the outcome is unknown;
 * - `reconnectOnError: null`: no reconnection that re-sends the failed command (`handleReconnection`
 *   case 2).
 * Reconnection itself goes on in the background (ioredis's default back-off).
 */
export const noResendOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  reconnectOnError: null,
} as const satisfies RedisOptions

const connectionOptions = (options: RedisStorageOptions, settings: Settings): RedisOptions => ({
  connectTimeout: settings.connectMillis,
  commandTimeout: settings.commandMillis,
  ...noResendOptions,
  ...(options.username === undefined ? {} : { username: options.username }),
  ...(options.password === undefined ? {} : { password: Redacted.value(options.password) }),
  ...(options.tls === true ? { tls: {} } : {}),
})

/**
 * The Cluster options of the library's own Cluster client, and those a caller's Cluster client
 * given to {@link fromClient} must have (it checks them), with {@link noResendOptions} as its
 * `redisOptions` (read in ioredis 5's `built/cluster/index.js`):
 * every rejection of a command goes through `handleError`, which re-sends it — at once after MOVED
 * or ASK, from a delay queue after TRYAGAIN (`retryDelayOnTryAgain`, which has no "off" value),
 * CLUSTERDOWN (`retryDelayOnClusterDown`) or a closed connection (`retryDelayOnFailover`) — until
 * `maxRedirections` is used up. Its first step sets the budget to `maxRedirections` and rejects
 * when it is `<= 0`, so `maxRedirections: 0` rejects every error at once: nothing is re-sent,
 * early or late (a MOVED arriving after a timeout would otherwise send the command to the new
 * owner). The adapter refreshes the slot map itself on MOVED/ASK. The delays are 0 as well, so
 * that no queue holds a command should the budget ever be raised. `enableOfflineQueue: false`
 * makes a call fail while the cluster is not ready. Each node's connection keeps an offline queue
 * (ioredis's ConnectionPool forces `enableOfflineQueue: true` on node connections) and does not
 * reconnect (`retryStrategy: null`): a command sent to a node that is still connecting may wait
 * there, and is written when the node is ready — the write guard turns such a late write into a
 * PING.
 */
export const noResendClusterOptions = {
  enableOfflineQueue: false,
  maxRedirections: 0,
  retryDelayOnMoved: 0,
  retryDelayOnTryAgain: 0,
  retryDelayOnClusterDown: 0,
  retryDelayOnFailover: 0,
  redisOptions: noResendOptions,
} as const satisfies ClusterOptions

const clusterOptions = (connection: RedisOptions, settings: Settings): ClusterOptions => ({
  ...noResendClusterOptions,
  lazyConnect: true,
  slotsRefreshTimeout: settings.connectMillis,
  redisOptions: connection,
})

const createClient = (options: RedisStorageOptions, settings: Settings): Client => {
  const connection = connectionOptions(options, settings)
  if (options.nodes !== undefined && options.nodes.length > 0) {
    const nodes: Array<ClusterNode> = options.nodes.map((n) =>
      typeof n === "string" ? n : { host: n.host, port: n.port },
    )
    return new Cluster(nodes, clusterOptions(connection, settings))
  }
  const standalone: RedisOptions = {
    ...connection,
    lazyConnect: true,
    ...(options.db === undefined ? {} : { db: options.db }),
  }
  if (options.url !== undefined) {
    const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
    return new Redis(url, standalone)
  }
  return new Redis({ host: options.host ?? "127.0.0.1", port: options.port ?? 6379, ...standalone })
}

/** Loads every script on every data node, so the first EVALSHA of each finds it. */
const loadScripts = (client: Client, settings: Settings): Effect.Effect<void, StorageUnavailable> =>
  Effect.forEach(
    dataNodes(client),
    (node) =>
      Effect.forEach(
        Scripts.all,
        (script) =>
          Effect.flatMap(
            attempt(`SCRIPT LOAD (${script.name})`, settings.commandMillis, () => node.script("LOAD", script.lua)),
            (sha) =>
              sha === script.sha
                ? Effect.void
                : Effect.fail(
                    new StorageUnavailable({
                      detail: `Redis answered SCRIPT LOAD with an unexpected SHA-1 ${String(sha)}`,
                    }),
                  ),
          ),
        { discard: true },
      ),
    { concurrency: "unbounded", discard: true },
  )

const checkPrefix = (client: Client): Effect.Effect<void, StorageUnavailable> => {
  const prefixed = isCluster(client)
    ? (client.options.keyPrefix ?? client.options.redisOptions?.keyPrefix)
    : client.options.keyPrefix
  return prefixed === undefined || prefixed === ""
    ? Effect.void
    : Effect.fail(
        new StorageUnavailable({
          detail: "the client has ioredis's keyPrefix option set; use the keyPrefix option of RedisStorage instead",
        }),
      )
}

/** Refuses a caller's client that would send a command twice or late (see the README). */
const checkResends = (client: Client): Effect.Effect<void, StorageUnavailable> => {
  const risks = resendRisks(client)
  return risks.length === 0
    ? Effect.void
    : Effect.fail(
        new StorageUnavailable({
          detail: `the ${isCluster(client) ? "Cluster" : "Redis"} client could send a command twice or after it was answered: ${risks.join("; ")}`,
        }),
      )
}

const decodeJson = <A>(what: string, json: string): Effect.Effect<A, StorageUnavailable> =>
  Effect.try({ try: () => JSON.parse(json) as A, catch: (cause) => unavailable(`decoding ${what}`, cause) })

const corrupt = (detail: string) => new StorageUnavailable({ detail: `Redis holds an unreadable value: ${detail}` })

const parseMember = (member: string): Effect.Effect<HolderRef, StorageUnavailable> => {
  const parts = member.split("/")
  const [customerId, holderType, holderId] = parts
  if (
    parts.length !== 3 ||
    customerId === undefined ||
    holderId === undefined ||
    (holderType !== "contracts" && holderType !== "customers")
  ) {
    return Effect.fail(corrupt(`index member "${member}"`))
  }
  return Effect.succeed({ customerId, holderType, holderId })
}

const uniqueIndexKeys = (keys: ReadonlyArray<IndexKey>): ReadonlyArray<IndexKey> => {
  const seen = new Map<string, IndexKey>()
  for (const key of keys) seen.set(`${key.kind}\u0000${key.value}`, key)
  return [...seen.values()]
}

/** The storage over a client that is ready; used by every constructor. */
const storageOver = (client: Client, settings: Settings): Storage["Type"] => {
  const { layout, commandMillis } = settings
  const standalone = !isCluster(client)
  const call = <A>(what: string, f: () => Promise<A>) => attempt(what, commandMillis, f, client)

  const load = (ref: HolderRef): Effect.Effect<Option.Option<StoredHolder>, StorageUnavailable> =>
    Effect.flatMap(
      call("load", () => client.hmget(layout.holder(ref).holder, "rev", "doc")),
      ([rev, doc]): Effect.Effect<Option.Option<StoredHolder>, StorageUnavailable> => {
        if (rev == null && doc == null) return Effect.succeed(Option.none())
        const revision = Number(rev)
        if (doc == null || !Number.isSafeInteger(revision) || revision < 1) {
          return Effect.fail(corrupt(`holder ${holderKey(ref)} has no valid revision or document`))
        }
        return Effect.try({
          try: () => Option.some({ revision, document: decodeDocument(doc) }),
          catch: (cause) => unavailable(`decoding holder ${holderKey(ref)}`, cause),
        })
      },
    )

  // A write before the script is not the commit: whatever became of it, the script was not sent.
  const beforeScript =
    (what: string) =>
    (failure: WriteFailure): StorageUnavailable =>
      new StorageUnavailable({
        detail: `Redis ${what} failed, so the commit was not sent: ${failure.cause.message}`,
        cause: failure.cause,
      })

  const claim = (alias: string, member: string): Effect.Effect<Option.Option<HolderRef>, StorageUnavailable> =>
    Effect.flatMap(
      write(client, commandMillis, "set", [layout.claim(alias), member, "NX", "GET"]).pipe(
        Effect.mapError(beforeScript(`claim of balance group "${alias}"`)),
      ),
      (previous): Effect.Effect<Option.Option<HolderRef>, StorageUnavailable> => {
        // nil: the key was absent and is now ours; our own member: claimed by us before.
        if (previous == null || previous === member) return Effect.succeed(Option.none())
        if (typeof previous !== "string") return Effect.fail(corrupt(`claim of balance group "${alias}"`))
        return Effect.map(parseMember(previous), Option.some)
      },
    )

  const commit = (request: CommitRequest): Effect.Effect<CommitResult, StorageUnavailable | OutcomeUnknown> =>
    Effect.gen(function* () {
      const { ref, expected, entries } = request
      const keys = layout.holder(ref)
      const member = holderKey(ref)
      const index = uniqueIndexKeys(request.index)
      // A standalone server runs a script over keys of any slot, so there every index key is
      // written by the script itself, atomically with the commit, in the same round trip. On a
      // Cluster a script reaches only its own slot: the other keys go first, as pointers.
      const inScript = (k: IndexKey) => standalone || layout.sameSlot(ref, k)
      const crossSlot = index.filter((k) => !inScript(k)).map(layout.index)
      const sameSlot = index.filter(inScript).map(layout.index)
      const next = expected === "absent" ? 1 : expected + 1
      const claims = [...new Set(request.claims)]
      const args = [
        expected === "absent" ? "absent" : String(expected),
        String(next),
        encodeDocument(request.document),
        randomUUID(),
        member,
        String(entries.length),
        String(claims.length),
        ...claims,
        ...entries.flatMap((e) => [JSON.stringify(e), e.id, e.reference === undefined ? "0" : "1", e.reference ?? ""]),
      ]
      if (claims.length > 0) {
        // A claim outlives a commit that does not follow it, so none is taken for a commit that
        // would conflict: the script checks again, this only spares the claim of a stale attempt.
        const revision = yield* call("commit: revision check", () => client.hget(keys.holder, "rev"))
        if (revision !== (expected === "absent" ? null : String(expected))) return { _tag: "Conflict" } as const
      }
      // Claims, then pointers in other slots, then the script: should the commit not follow, they
      // name a holder that does not match them — a pointer is checked by lookups' callers, a claim
      // counts only once the holder's own claims set confirms it — and a committed key is never
      // without its pointer or its claim. One claim after the other, so that a Claimed answer
      // leaves as few claims behind as possible.
      for (const alias of claims) {
        const owner = yield* claim(alias, member)
        if (Option.isSome(owner)) return { _tag: "Claimed", alias, holder: owner.value } as const
      }
      yield* Effect.forEach(
        crossSlot,
        (key) => write(client, commandMillis, "sadd", [key, member]).pipe(Effect.mapError(beforeScript("index write"))),
        { concurrency: "unbounded", discard: true },
      )
      const answer = yield* writeScript(
        client,
        commandMillis,
        Scripts.commit,
        [keys.holder, keys.journal, keys.ids, keys.references, keys.claims, ...sameSlot],
        args,
      ).pipe(Effect.mapError((failure) => writeError("commit", failure, entries[0]?.id)))
      if (answer === next) return { _tag: "Committed", revision: next } as const
      if (answer === 0) return { _tag: "Conflict" } as const
      // The script ran (it answered), but not as it answers: nothing says what it wrote.
      return yield* writeError(
        "commit",
        { applied: "maybe", code: undefined, cause: new Error(`the commit script answered ${String(answer)}`) },
        entries[0]?.id,
      )
    })

  const lookup = (key: LookupKey): Effect.Effect<ReadonlyArray<HolderRef>, StorageUnavailable> => {
    if (key.kind === "balanceGroup") {
      // The claimant counts once a commit of it confirmed the claim (a claim whose commit did not
      // follow is no alias of anyone's, though it stays reserved for that holder).
      return Effect.gen(function* () {
        const member = yield* call("lookup", () => client.get(layout.claim(key.value)))
        if (member == null) return []
        const ref = yield* parseMember(member)
        const confirmed = yield* call("lookup", () => client.sismember(layout.holder(ref).claims, key.value))
        return confirmed === 1 ? [ref] : []
      })
    }
    return Effect.flatMap(
      call("lookup", () => client.smembers(layout.index(key))),
      (members) => Effect.forEach(members, parseMember),
    )
  }

  const findEntry = (
    ref: HolderRef,
    selector: EntrySelector,
  ): Effect.Effect<Option.Option<JournalEntry>, StorageUnavailable> => {
    const keys = layout.holder(ref)
    const [hash, value] = "id" in selector ? [keys.ids, selector.id] : [keys.references, selector.reference]
    return Effect.flatMap(
      call("findEntry", () => evalScript(client, Scripts.findEntry, [hash, keys.journal], [value])),
      (json) => {
        if (json == null) return Effect.succeed(Option.none())
        if (typeof json !== "string") return Effect.fail(corrupt(`journal entry of ${holderKey(ref)}`))
        return Effect.map(decodeJson<JournalEntry>("journal entry", json), Option.some)
      },
    )
  }

  const journal = (
    ref: HolderRef,
    range: JournalRange,
  ): Effect.Effect<ReadonlyArray<JournalEntry>, StorageUnavailable> => {
    // LRANGE's stop is inclusive, and a stop of -1 would mean "to the end".
    if (range.limit < 1) return Effect.succeed([])
    return Effect.flatMap(
      call("journal", () =>
        client.lrange(layout.holder(ref).journal, range.afterSeq, range.afterSeq + range.limit - 1),
      ),
      (rows) => Effect.forEach(rows, (row) => decodeJson<JournalEntry>("journal entry", row)),
    )
  }

  // The masters are listed on each ping: a Cluster's topology may have changed since the last.
  // A Cluster client is ready only once its slots are refreshed and checked: before that, its
  // node connections may answer PING while it refuses every command (no offline queue).
  const ping = Effect.suspend(() => {
    if (isCluster(client) && client.status !== "ready")
      return Effect.fail(new StorageUnavailable({ detail: `the Redis Cluster client is not ready (${client.status})` }))
    const nodes = dataNodes(client)
    if (nodes.length === 0) return Effect.fail(new StorageUnavailable({ detail: "no Redis master is connected" }))
    return Effect.forEach(nodes, (node) => call("ping", () => node.ping()), { concurrency: "unbounded", discard: true })
  })

  return Storage.of({ load, commit, lookup, findEntry, journal, ping })
}

/**
 * Opens a client from `options`, waits until it is ready (at most `connectTimeout`), loads the
 * scripts and returns the storage. The client is closed when the scope closes. Fails with
 * StorageUnavailable when Redis cannot be reached in time.
 */
export const make = (
  options: RedisStorageOptions = {},
): Effect.Effect<Storage["Type"], StorageUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    const client = yield* Effect.acquireRelease(
      Effect.gen(function* () {
        const client = createClient(options, settings)
        // Failures surface on the calls that meet them; without a listener ioredis prints them.
        client.on("error", () => undefined)
        yield* attempt("connect", settings.connectMillis + settings.commandMillis, () =>
          awaitReady(client, settings.connectMillis),
        ).pipe(Effect.tapError(() => Effect.sync(() => client.disconnect())))
        return client
      }),
      (client) => Effect.promise(() => closeClient(client, settings.commandMillis)),
    )
    yield* loadScripts(client, settings)
    return storageOver(client, settings)
  })

/** The storage over a client the library opens from `options` and closes with the layer. */
export const layer = (options: RedisStorageOptions = {}): Layer.Layer<Storage, StorageUnavailable> =>
  Layer.scoped(Storage, make(options))

/**
 * {@link layer} with its options read from `Config`, e.g.
 * `layerConfig({ url: Config.redacted("REDIS_URL"), keyPrefix: Config.string("REDIS_PREFIX") })`.
 */
export const layerConfig = (
  config: Config.Config.Wrap<RedisStorageOptions>,
): Layer.Layer<Storage, StorageUnavailable | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The storage over the caller's own client (standalone or Cluster), which it never closes. Waits
 * until the client is ready (connecting it if it was created with `lazyConnect`; at most
 * `connectTimeout`) and loads the scripts. Every call is still bounded by `commandTimeout`.
 *
 * Fails with StorageUnavailable, naming the settings to change, when the client could send a
 * command twice or late: a standalone client needs `enableOfflineQueue: false`,
 * `autoResendUnfulfilledCommands: false` and no `reconnectOnError` (spread
 * {@link noResendOptions}); a Cluster client `enableOfflineQueue: false`, `maxRedirections: 0`,
 * no `redisOptions.reconnectOnError`, and `redisOptions.autoResendUnfulfilledCommands: false` when
 * it sets `clusterNodeRetryStrategy` (spread {@link noResendClusterOptions}). Also refused: a
 * client with ioredis's own `keyPrefix` (use this adapter's).
 */
export const fromClient = (
  client: RedisClient,
  options: AdapterOptions = {},
): Effect.Effect<Storage["Type"], StorageUnavailable> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    yield* checkPrefix(client)
    yield* checkResends(client)
    yield* attempt("connect", settings.connectMillis + settings.commandMillis, () =>
      awaitReady(client, settings.connectMillis),
    )
    yield* loadScripts(client, settings)
    return storageOver(client, settings)
  })

/** {@link fromClient} as a layer; the client stays open when the layer is released. */
export const layerFromClient = (
  client: RedisClient,
  options: AdapterOptions = {},
): Layer.Layer<Storage, StorageUnavailable> => Layer.effect(Storage, fromClient(client, options))

/** What {@link rebuildIndexes} did. */
export interface RebuildReport {
  /** Holders found. */
  readonly holders: number
  /** Journal entries read. */
  readonly entries: number
  /** Index memberships written (each holder under each of its keys). */
  readonly indexed: number
  /** Of those, how many were missing before. */
  readonly added: number
  /** Balance-group claims written (holders whose document names an alias). */
  readonly claims: number
  /** Of those, how many were missing before (and are now restored). */
  readonly claimsAdded: number
  /**
   * Aliases a document names but another holder has claimed: left as they are (the first claim
   * wins), for an operator to resolve. A lookup of such an alias answers the claimant only once a
   * commit of the claimant confirmed it, and the engine checks that holder's document.
   */
  readonly claimConflicts: ReadonlyArray<ClaimConflict>
}

/** A balance-group alias named by `holder`'s document but claimed by `claimedBy`. */
export interface ClaimConflict {
  readonly alias: string
  readonly holder: HolderRef
  readonly claimedBy: HolderRef
}

/** Options of {@link rebuildIndexes}. */
export interface RebuildOptions extends AdapterOptions {
  /** How many keys each SCAN step asks for (default 500). */
  readonly scanCount?: number | undefined
  /** Holders processed at once (default 8). */
  readonly concurrency?: number | undefined
}

/**
 * Rebuilds every lookup index from the holders and their journals: SCANs each data node (each
 * master of a Cluster) for holder keys under `keyPrefix`, adds each holder under the keys core's
 * `holderIndexKeys` and `entryIndexKeys` derive from its document and entries — the keys the
 * engine indexes it under — and claims the balance-group alias its document names (SET NX),
 * reporting an alias another holder claimed instead of overwriting it. Only adds: a stale pointer
 * or claim is harmless to lookups, and removing one would race with commits in flight. Safe to
 * run while the storage is in use.
 */
export const rebuildIndexes = (
  client: RedisClient,
  options: RebuildOptions = {},
): Effect.Effect<RebuildReport, StorageUnavailable> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    yield* checkPrefix(client)
    const { layout, commandMillis } = settings
    const call = <A>(what: string, f: () => Promise<A>) => attempt(what, commandMillis, f, client)
    const count = String(options.scanCount ?? 500)
    const totals = { holders: 0, entries: 0, indexed: 0, added: 0, claims: 0, claimsAdded: 0 }
    const claimConflicts: Array<ClaimConflict> = []

    const rebuildHolder = (key: string) =>
      Effect.gen(function* () {
        const json = yield* call("rebuild: read holder", () => client.hget(key, "doc"))
        // Deleted since the SCAN saw it.
        if (json == null) return
        const document = yield* Effect.try({
          try: () => decodeDocument(json),
          catch: (cause) => unavailable(`decoding holder at ${key}`, cause),
        })
        const keys = layout.holder(document.ref)
        if (keys.holder !== key) return yield* corrupt(`the document at ${key} names another holder`)
        const entries: Array<JournalEntry> = []
        for (;;) {
          const rows = yield* call("rebuild: read journal", () =>
            client.lrange(keys.journal, entries.length, entries.length + 999),
          )
          for (const row of rows) entries.push(yield* decodeJson<JournalEntry>("journal entry", row))
          if (rows.length < 1000) break
        }
        const index = uniqueIndexKeys([...holderIndexKeys(document), ...entryIndexKeys(entries)])
        const member = holderKey(document.ref)
        const added = yield* Effect.forEach(
          index,
          (k) => call("rebuild: index write", () => client.sadd(layout.index(k), member)),
          { concurrency: 8 },
        )
        const alias = document.balanceGroupId
        if (alias !== null) {
          const previous = yield* call("rebuild: claim", () => client.set(layout.claim(alias), member, "NX", "GET"))
          totals.claims += 1
          if (previous != null && previous !== member) {
            claimConflicts.push({ alias, holder: document.ref, claimedBy: yield* parseMember(previous) })
          } else {
            const confirmed = yield* call("rebuild: claim", () => client.sadd(keys.claims, alias))
            if (previous == null || confirmed === 1) totals.claimsAdded += 1
          }
        }
        totals.holders += 1
        totals.entries += entries.length
        totals.indexed += index.length
        totals.added += added.reduce((sum, n) => sum + n, 0)
      })

    for (const node of dataNodes(client)) {
      let cursor = "0"
      do {
        const [next, keys] = yield* call("rebuild: SCAN", () =>
          node.scan(cursor, "MATCH", layout.holderPattern, "COUNT", count),
        )
        cursor = next
        yield* Effect.forEach(keys, rebuildHolder, { concurrency: options.concurrency ?? 8, discard: true })
      } while (cursor !== "0")
    }
    return { ...totals, claimConflicts } satisfies RebuildReport
  })
