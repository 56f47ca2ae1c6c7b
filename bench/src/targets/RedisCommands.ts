/**
 * Round trips to Redis, counted at the client: every command an ioredis client sends (no target
 * pipelines, so each is a round trip). Server-side counters would not do: `INFO` counts the
 * commands a script runs as well.
 *
 * @module
 */
import type { Cluster, Redis } from "ioredis"
import type { Target } from "../Harness.js"

/** Counts the commands `client` sends from now on; returns the client and its round-trip count. */
export const countingCommands = <C extends Redis | Cluster>(
  client: C,
): { readonly client: C; readonly roundTrips: NonNullable<Target["roundTrips"]> } => {
  let sent = 0
  const send = client.sendCommand.bind(client) as (...args: Array<unknown>) => unknown
  ;(client as { sendCommand: (...args: Array<unknown>) => unknown }).sendCommand = (...args) => {
    sent++
    return send(...args)
  }
  return { client, roundTrips: { scope: "process", count: async () => sent } }
}
