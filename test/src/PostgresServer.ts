/**
 * PostgreSQL for the tests, two ways:
 * - {@link freshDatabase}: a new database `creditlock_test_<random>` on the machine's server
 *   (127.0.0.1:5432, trust authentication, user `postgres`), dropped with `DROP DATABASE … WITH
 *   (FORCE)` afterwards;
 * - {@link startPostgres}: a server of the test's own — `initdb` and `postgres` from the folder
 *   `pg_config --bindir` names, in a temporary folder, on a free loopback port, run as the
 *   `postgres` operating-system user when the tests run as root — that a fault test may stop,
 *   start and kill. It is stopped by its pid; nothing here signals a server the tests did not
 *   start.
 * Both talk to PostgreSQL with `psql` and fail loudly, saying how to install or start PostgreSQL,
 * when it is missing.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./RedisServer.js"

const INSTALL_HINT =
  "install PostgreSQL with `apt-get install postgresql` (Debian/Ubuntu: server, initdb, pg_ctl, psql and pg_config), " +
  "then start the machine's server with `pg_ctlcluster 15 main start` (trust authentication for user postgres on 127.0.0.1:5432)"

/** Where the machine's server is expected. */
export const MACHINE_SERVER = { host: "127.0.0.1", port: 5432, user: "postgres" } as const

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** The folder of PostgreSQL's server programs (`pg_config --bindir`); fails with an install hint. */
export const binDir = (): string => {
  const probe = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" })
  if (probe.error !== undefined || probe.status !== 0 || probe.stdout.trim() === "") {
    throw new Error(`pg_config is needed by the PostgreSQL tests but could not be run: ${INSTALL_HINT}`)
  }
  return probe.stdout.trim()
}

const psqlBinary = (): string => {
  const probe = spawnSync("psql", ["--version"], { stdio: "ignore" })
  if (probe.error === undefined && probe.status === 0) return "psql"
  return join(binDir(), "psql")
}

/** Runs one SQL command with psql as user postgres; resolves with its output. */
export const psql = (port: number, sql: string, database = "postgres", timeoutMillis = 30_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      psqlBinary(),
      ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-XAtqc", sql],
      { timeout: timeoutMillis, env: { ...process.env, PGCONNECT_TIMEOUT: "5" } },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`psql on port ${port} failed: ${error.message}\n${stdout}${stderr}`))
        else resolve(stdout)
      },
    )
  })

/** A database of the test's own. */
export interface Database {
  readonly name: string
  /** `postgres://postgres@127.0.0.1:<port>/<name>`. */
  readonly url: string
  readonly port: number
  /** Drops the database, ending any session still connected to it. */
  readonly drop: () => Promise<void>
}

/**
 * Creates `creditlock_test_<random>` on the server at `port` (default the machine's, 5432). Fails,
 * saying how to install and start PostgreSQL, when the server does not answer.
 */
export const freshDatabase = async (port: number = MACHINE_SERVER.port): Promise<Database> => {
  const name = `creditlock_test_${randomBytes(6).toString("hex")}`
  try {
    await psql(port, `CREATE DATABASE ${name}`)
  } catch (error) {
    throw new Error(
      `the PostgreSQL tests need a server on 127.0.0.1:${port} with trust authentication for user postgres, ` +
        `and could not create a database there (${error instanceof Error ? error.message : String(error)}): ${INSTALL_HINT}`,
    )
  }
  return {
    name,
    url: `postgres://postgres@127.0.0.1:${port}/${name}`,
    port,
    drop: async () => {
      await psql(port, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    },
  }
}

/** A running PostgreSQL server of the test's own. */
export interface PostgresServer {
  readonly port: number
  /** The data directory. */
  readonly dataDir: string
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string
  /** The pid of the current postmaster (changes on start). */
  readonly pid: () => number
  /** Fast shutdown (SIGINT to the postmaster: sessions are terminated) and waits for it to exit. */
  readonly stop: () => Promise<void>
  /** Starts the server again on the same port and directory, and waits until it accepts connections. */
  readonly start: () => Promise<void>
  /**
   * Immediate shutdown (SIGQUIT to the postmaster), as a crash: no checkpoint, crash recovery at
   * the next start. Waits for it to exit.
   */
  readonly kill: () => Promise<void>
  /** Stops the server and removes its folder. */
  readonly dispose: () => Promise<void>
}

const live = new Set<ChildProcess>()
// Last resort when a test run is torn down without its afterAll: no server outlives the worker.
process.once("exit", () => {
  for (const child of live) child.kill("SIGQUIT")
})

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** The uid and gid of the `postgres` user when running as root (PostgreSQL refuses to run as root). */
const runAs = (): { readonly uid: number; readonly gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" })
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" })
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error(`the PostgreSQL tests run as root and need the operating-system user postgres: ${INSTALL_HINT}`)
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

const accepting = (bin: string, port: number): boolean =>
  spawnSync(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-t", "1"], { stdio: "ignore" }).status ===
  0

const launch = async (
  bin: string,
  dataDir: string,
  socketDir: string,
  port: number,
  user: ReturnType<typeof runAs>,
): Promise<ChildProcess> => {
  const child = spawn(
    join(bin, "postgres"),
    [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-k",
      socketDir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "max_connections=60",
    ],
    { stdio: ["ignore", "pipe", "pipe"], ...(user === undefined ? {} : user) },
  )
  live.add(child)
  child.once("exit", () => live.delete(child))
  let output = ""
  const collect = (data: Buffer) => {
    output = (output + data.toString("utf8")).slice(-4_000)
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres on port ${port} exited early:\n${output}`)
    }
    if (accepting(bin, port)) return child
    await sleep(50)
  }
  child.kill("SIGQUIT")
  await exited(child)
  throw new Error(`postgres on port ${port} did not accept connections within 30 s:\n${output}`)
}

const signal = async (child: ChildProcess, name: NodeJS.Signals): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = exited(child)
  child.kill(name)
  const timer = setTimeout(() => child.kill("SIGQUIT"), 10_000)
  await gone
  clearTimeout(timer)
}

/**
 * Creates a cluster with `initdb` (trust authentication, user postgres) in a fresh temporary
 * folder and starts `postgres` on a free loopback port; resolves once it accepts connections.
 */
export const startPostgres = async (): Promise<PostgresServer> => {
  const bin = binDir()
  const user = runAs()
  const dir = mkdtempSync(join(tmpdir(), "creditlock-postgres-"))
  const dataDir = join(dir, "data")
  const socketDir = join(dir, "socket")
  mkdirSync(socketDir)
  if (user !== undefined) {
    chownSync(dir, user.uid, user.gid)
    chownSync(socketDir, user.uid, user.gid)
  }
  const init = spawnSync(
    join(bin, "initdb"),
    ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"],
    { encoding: "utf8", ...(user === undefined ? {} : user) },
  )
  if (init.error !== undefined || init.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(
      `initdb failed (${init.error?.message ?? `status ${init.status}`}):\n${init.stdout}${init.stderr}\n${INSTALL_HINT}`,
    )
  }
  let port = 0
  let child: ChildProcess | undefined
  // Another process may take the port between the probe and the bind: try a few.
  for (let tries = 0; child === undefined; tries++) {
    port = await freePort()
    try {
      child = await launch(bin, dataDir, socketDir, port, user)
    } catch (error) {
      if (tries >= 3) {
        rmSync(dir, { recursive: true, force: true })
        throw error
      }
    }
  }
  let current: ChildProcess = child
  return {
    port,
    dataDir,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid: () => current.pid ?? -1,
    stop: () => signal(current, "SIGINT"),
    kill: () => signal(current, "SIGQUIT"),
    start: async () => {
      await signal(current, "SIGINT")
      current = await launch(bin, dataDir, socketDir, port, user)
    },
    dispose: async () => {
      await signal(current, "SIGINT")
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
