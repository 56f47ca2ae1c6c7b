/**
 * Real Redis servers for the tests: each is a `redis-server` process of its own, on a free
 * loopback port, with its own temporary directory, stopped by its pid. A 3-master Cluster is
 * three such servers joined with `redis-cli --cluster create`. Nothing here touches a Redis the
 * tests did not start.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const INSTALL_HINT =
  "install it with `apt-get install redis-server` (Debian/Ubuntu), which provides redis-server and redis-cli"

/** Fails, saying how to install it, when `binary` cannot be run. */
export const requireBinary = (binary: string): void => {
  const probe = spawnSync(binary, ["--version"], { stdio: "ignore" })
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`${binary} is needed by the Redis tests but could not be run: ${INSTALL_HINT}`)
  }
}

/** Fails, saying how to install them, unless redis-server and redis-cli can be run. */
export const requireRedis = (): void => {
  requireBinary("redis-server")
  requireBinary("redis-cli")
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port)
        else reject(new Error("no port"))
      })
    })
  })

/** Sends one inline command and resolves with the first line of the reply, or `null` on any failure. */
export const rawCommand = (port: number, command: string, timeoutMillis = 1_000): Promise<string | null> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    let reply = ""
    const done = (value: string | null) => {
      socket.destroy()
      resolve(value)
    }
    socket.setTimeout(timeoutMillis, () => done(null))
    socket.on("connect", () => socket.write(`${command}\r\n`))
    socket.on("data", (data) => {
      reply += data.toString("utf8")
      const end = reply.indexOf("\r\n")
      if (end >= 0) done(reply.slice(0, end))
    })
    socket.on("error", () => done(null))
  })

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** A running redis-server. */
export interface RedisServer {
  readonly port: number
  readonly dir: string
  readonly url: string
  /** The pid of the current process (changes on restart). */
  readonly pid: () => number
  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  readonly stop: () => Promise<void>
  /** Kills the process with SIGKILL, as a crash would, and waits for it to exit. */
  readonly crash: () => Promise<void>
  /** Starts the server again on the same port, directory and arguments, and waits for PING. */
  readonly restart: () => Promise<void>
  /** Stops the process and removes its directory. */
  readonly dispose: () => Promise<void>
}

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Extra redis-server arguments, e.g. `["--appendonly", "yes"]`. */
  readonly args?: ReadonlyArray<string>
}

const live = new Set<ChildProcess>()
// Last resort when a test run is torn down without its afterAll: no server outlives the worker.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

const launch = async (port: number, dir: string, args: ReadonlyArray<string>): Promise<ChildProcess> => {
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--daemonize",
      "no",
      "--logfile",
      "",
      ...args,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  )
  live.add(child)
  child.once("exit", () => live.delete(child))
  let output = ""
  const collect = (data: Buffer) => {
    output = (output + data.toString("utf8")).slice(-4_000)
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited early:\n${output}`)
    }
    // A server with a password answers NOAUTH, which shows it is up all the same.
    const reply = await rawCommand(port, "PING", 500)
    if (reply?.startsWith("+PONG") || reply?.startsWith("-NOAUTH")) return child
    await sleep(25)
  }
  child.kill("SIGKILL")
  await exited(child)
  throw new Error(`redis-server on port ${port} did not answer PING within 20 s:\n${output}`)
}

const stopChild = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = exited(child)
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
  await gone
  clearTimeout(timer)
}

/**
 * Starts a redis-server on a free loopback port with a fresh temporary `--dir`, and resolves once
 * it answers PING. Fails with an install hint when redis-server is missing.
 */
export const startServer = async (options: ServerOptions = {}): Promise<RedisServer> => {
  requireRedis()
  const args = options.args ?? []
  const dir = mkdtempSync(join(tmpdir(), "creditlock-redis-"))
  let port = 0
  let child: ChildProcess | undefined
  // Another process may take the port between the probe and the bind: try a few.
  for (let tries = 0; child === undefined; tries++) {
    port = await freePort()
    try {
      child = await launch(port, dir, args)
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
    dir,
    url: `redis://127.0.0.1:${port}`,
    pid: () => current.pid ?? -1,
    stop: () => stopChild(current),
    crash: async () => {
      const gone = exited(current)
      current.kill("SIGKILL")
      await gone
    },
    restart: async () => {
      await stopChild(current)
      current = await launch(port, dir, args)
    },
    dispose: async () => {
      await stopChild(current)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const cli = (args: ReadonlyArray<string>, timeoutMillis = 60_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile("redis-cli", [...args], { timeout: timeoutMillis }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`redis-cli ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`))
      else resolve(stdout)
    })
  })

/** A running 3-master Redis Cluster. */
export interface RedisCluster {
  readonly servers: ReadonlyArray<RedisServer>
  /** The startup nodes, `{ host, port }`. */
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** Stops every server and removes their directories. */
  readonly dispose: () => Promise<void>
}

const clusterState = async (port: number): Promise<string> => {
  const info = await cli(["-p", String(port), "cluster", "info"], 5_000).catch(() => "")
  return /cluster_state:(\w+)/.exec(info)?.[1] ?? "unknown"
}

/** Waits until every server reports `cluster_state:<state>`. */
export const awaitClusterState = async (ports: ReadonlyArray<number>, state: string, timeoutMillis = 30_000) => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    const states = await Promise.all(ports.map(clusterState))
    if (states.every((s) => s === state)) return
    await sleep(100)
  }
  throw new Error(`the cluster did not reach cluster_state:${state} within ${timeoutMillis} ms`)
}

/**
 * Starts three cluster-enabled servers (each with its own cluster bus port and directory), joins
 * them as a 3-master Cluster with no replicas, and resolves once every node says
 * `cluster_state:ok`.
 */
export const startCluster = async (options: { readonly nodeTimeoutMillis?: number } = {}): Promise<RedisCluster> => {
  requireRedis()
  const servers: Array<RedisServer> = []
  try {
    for (let i = 0; i < 3; i++) {
      const busPort = await freePort()
      servers.push(
        await startServer({
          args: [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            String(options.nodeTimeoutMillis ?? 2_000),
            "--cluster-port",
            String(busPort),
            "--appendonly",
            "no",
          ],
        }),
      )
    }
    await cli([
      "--cluster",
      "create",
      ...servers.map((s) => `127.0.0.1:${s.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ])
    await awaitClusterState(
      servers.map((s) => s.port),
      "ok",
    )
  } catch (error) {
    await Promise.all(servers.map((s) => s.dispose()))
    throw error
  }
  return {
    servers,
    nodes: servers.map((s) => ({ host: "127.0.0.1", port: s.port })),
    dispose: async () => {
      await Promise.all(servers.map((s) => s.dispose()))
    },
  }
}
