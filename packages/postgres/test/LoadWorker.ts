/**
 * A load-generating child process for the multi-process test (see `@creditlock/test-suite/load-worker`),
 * over the database given in its arguments (migrating it if need be, as every worker does at once).
 *
 * Run as `node --import tsx LoadWorker.ts '<json WorkerArgs>'`.
 *
 * @module
 */
import { runLoadWorker } from "@creditlock/test-suite/load-worker"
import { PostgresStorage } from "../src/index.js"
import type { WorkerArgs } from "./Workers.js"

const args = JSON.parse(process.argv[2] ?? "null") as WorkerArgs
runLoadWorker(args, PostgresStorage.layer({ connectionString: args.url, poolSize: 2 }))
