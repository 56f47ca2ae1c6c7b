/**
 * The Redis `Storage`, on ioredis, for a standalone server or a Redis Cluster.
 *
 * A holder is one hash (its revision and encoded document), its journal one list, with two hashes
 * finding an entry by id or by idempotency reference; all of them, and the set of the customer's
 * holders, carry the customer id as their hash tag, so in a Cluster they share one slot. A commit
 * is one Lua script over those keys: compare the revision, write the document, append the
 * entries, add the same-slot index members — all of it or nothing.
 *
 * Lookups by a value other than the customer id (subscription, balance-group alias, order id or
 * reference) live in sets tagged by that value, in other slots. A commit adds the holder to them
 * before it runs its script, so a crash in between leaves at most a pointer to a holder that does
 * not (yet) match — which the engine checks and discards — and never a committed key without its
 * pointer. {@link rebuildIndexes} restores them from the holders and journals.
 *
 * Every call is bounded by `commandTimeout`; every failure (refused connection, timeout,
 * CLUSTERDOWN, a script error, a stored value that does not decode) becomes StorageUnavailable.
 * The adapter decides nothing: every rule lives in @creditlock/core.
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
  Storage,
  StorageUnavailable,
  type StoredHolder,
} from "@creditlock/core"
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
  unavailable,
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
  /** How long one Redis call may take before it fails with StorageUnavailable; default 5 seconds. */
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
 * The connection settings of the library's own clients. No offline queue: while Redis is
 * unreachable a call fails at once instead of waiting for a reconnection. No command is sent
 * again after a connection drops (`maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands:
 * false`, and for a Cluster `retryDelayOnFailover: 0`): a commit whose reply was lost may have
 * been applied, and the engine settles that by reloading, not by sending it twice. Redirections
 * (MOVED, ASK) and TRYAGAIN/CLUSTERDOWN answers, which mean the command did not run, are still
 * retried by ioredis, a bounded number of times.
 */
const connectionOptions = (options: RedisStorageOptions, settings: Settings): RedisOptions => ({
  connectTimeout: settings.connectMillis,
  commandTimeout: settings.commandMillis,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  ...(options.username === undefined ? {} : { username: options.username }),
  ...(options.password === undefined ? {} : { password: Redacted.value(options.password) }),
  ...(options.tls === true ? { tls: {} } : {}),
})

const createClient = (options: RedisStorageOptions, settings: Settings): Client => {
  const connection = connectionOptions(options, settings)
  if (options.nodes !== undefined && options.nodes.length > 0) {
    const nodes: Array<ClusterNode> = options.nodes.map((n) =>
      typeof n === "string" ? n : { host: n.host, port: n.port },
    )
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryDelayOnFailover: 0,
      slotsRefreshTimeout: settings.connectMillis,
      redisOptions: connection,
    }
    return new Cluster(nodes, clusterOptions)
  }
  const standalone: RedisOptions = {
    ...connection,
    lazyConnect: true,
    enableOfflineQueue: false,
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

const checkClient = (client: Client): Effect.Effect<void, StorageUnavailable> => {
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
  const call = <A>(what: string, f: () => Promise<A>) => attempt(what, commandMillis, f)

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

  const commit = (request: CommitRequest): Effect.Effect<CommitResult, StorageUnavailable> =>
    Effect.gen(function* () {
      const { ref, expected, entries } = request
      const keys = layout.holder(ref)
      const member = holderKey(ref)
      const index = uniqueIndexKeys(request.index)
      const crossSlot = index.filter((k) => !layout.sameSlot(ref, k)).map(layout.index)
      const sameSlot = index.filter((k) => layout.sameSlot(ref, k)).map(layout.index)
      const args = [
        expected === "absent" ? "absent" : String(expected),
        String(expected === "absent" ? 1 : expected + 1),
        encodeDocument(request.document),
        randomUUID(),
        member,
        String(entries.length),
        ...entries.flatMap((e) => [JSON.stringify(e), e.id, e.reference === undefined ? "0" : "1", e.reference ?? ""]),
      ]
      // Pointers in other slots first: should the commit then fail, they point at a holder that
      // does not match them, which lookups' callers check; a committed key is never without one.
      yield* Effect.forEach(crossSlot, (key) => call("index write", () => client.sadd(key, member)), {
        concurrency: "unbounded",
        discard: true,
      })
      const answer = yield* call("commit", () =>
        evalScript(client, Scripts.commit, [keys.holder, keys.journal, keys.ids, keys.references, ...sameSlot], args),
      )
      if (answer === 1) return "committed" as const
      if (answer === 0) return "conflict" as const
      return yield* new StorageUnavailable({ detail: `Redis commit script answered ${String(answer)}` })
    })

  const lookup = (key: IndexKey): Effect.Effect<ReadonlyArray<HolderRef>, StorageUnavailable> =>
    Effect.flatMap(
      call("lookup", () => client.smembers(layout.index(key))),
      (members) => Effect.forEach(members, parseMember),
    )

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
  const ping = Effect.suspend(() => {
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
 * `connectTimeout`) and loads the scripts. Every call is still bounded by `commandTimeout`; the
 * client should not have ioredis's own `keyPrefix` (use this adapter's), and should have
 * `autoResendUnfulfilledCommands: false` (see the README).
 */
export const fromClient = (
  client: RedisClient,
  options: AdapterOptions = {},
): Effect.Effect<Storage["Type"], StorageUnavailable> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    yield* checkClient(client)
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
 * master of a Cluster) for holder keys under `keyPrefix`, and adds each holder under the keys
 * core's `holderIndexKeys` and `entryIndexKeys` derive from its document and entries — the keys
 * the engine indexes it under. Only adds: a stale pointer is harmless and removing one would race
 * with commits in flight. Safe to run while the storage is in use.
 */
export const rebuildIndexes = (
  client: RedisClient,
  options: RebuildOptions = {},
): Effect.Effect<RebuildReport, StorageUnavailable> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    yield* checkClient(client)
    const { layout, commandMillis } = settings
    const call = <A>(what: string, f: () => Promise<A>) => attempt(what, commandMillis, f)
    const count = String(options.scanCount ?? 500)
    const totals = { holders: 0, entries: 0, indexed: 0, added: 0 }

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
    return totals satisfies RebuildReport
  })
