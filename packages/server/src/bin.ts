#!/usr/bin/env node
/**
 * The `creditlock` executable: `creditlock serve` (the default) runs the server; `pnpm start` in
 * the repository runs this file in `node --import tsx`, exec'd by the shell so that the signals a
 * supervisor sends reach this process. A usage error prints the usage on stderr and exits with
 * status 2. Logs are JSON lines: below warning on stdout, warning and above on stderr.
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
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.jsonLogger))),
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
