/**
 * A load-generating child process for the multi-process and crash tests (see
 * `@creditlock/test-suite/load-worker`), over the database file given in its arguments (created if
 * need be).
 *
 * Run as `node --import tsx LoadWorker.ts '<json WorkerArgs>'`.
 *
 * @module
 */
import { runLoadWorker } from "@creditlock/test-suite/load-worker"
import { SqliteStorage } from "../src/index.js"
import type { WorkerArgs } from "./Workers.js"

const args = JSON.parse(process.argv[2] ?? "null") as WorkerArgs
runLoadWorker(args, SqliteStorage.layer({ filename: args.filename }))
