/**
 * The server entry point: `pnpm start` from the repository root, or
 * `node --import tsx packages/http/src/bin.ts`. Configuration is read from the environment (see
 * `Main`); logs are JSON lines on stdout.
 *
 * @module
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger } from "effect"
import { main } from "./Main.js"

main.pipe(Effect.provide(Logger.json), NodeRuntime.runMain({ disablePrettyLogger: true }))
