/**
 * @creditlock/sqlite: the `Storage` of @creditlock/core on SQLite (better-sqlite3) — durable, in
 * WAL mode, safe for several processes on one file of the same host.
 *
 * @module
 */
export * as SqliteStorage from "./SqliteStorage.js"
