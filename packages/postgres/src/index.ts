/**
 * @creditlock/postgres: the `Storage` of @creditlock/core on PostgreSQL (pg, node-postgres) — one
 * statement per commit, safe for any number of processes on one database.
 *
 * @module
 */
export * as PostgresStorage from "./PostgresStorage.js"
export * as PostgresTransaction from "./PostgresTransaction.js"
