#!/usr/bin/env node
/**
 * The `creditlock` executable: `creditlock serve` (the default) runs the server; `pnpm start` in
 * the repository runs this file with tsx. A usage error prints the usage on stderr and exits with
 * status 2. Logs are JSON lines on stdout.
 *
 * @module
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger } from "effect"
import { parse, serve, usage } from "./Cli.js"

const command = parse(process.argv.slice(2))
switch (command._tag) {
  case "Serve":
    serve.pipe(
      Effect.provide(Logger.json),
      NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true }),
    )
    break
  case "Help":
    process.stdout.write(usage)
    break
  case "UsageError":
    process.stderr.write(`creditlock: ${command.message}\n\n${usage}`)
    process.exitCode = 2
    break
}
