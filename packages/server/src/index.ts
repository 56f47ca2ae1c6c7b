/**
 * @creditlock/server: the `creditlock` executable, a standalone server for the creditlock HTTP API
 * (@creditlock/http). It owns what a program needs and a library does not: configuration from the
 * environment, the choice of store (`CREDIT_STORE`) and loading its adapter, the credentials file
 * format, signals, logs and traces.
 *
 * @module
 */
export * as Cli from "./Cli.js"
export * as Credentials from "./Credentials.js"
export * as Main from "./Main.js"
export * as Metrics from "./Metrics.js"
export * as Store from "./Store.js"
export * as Tracing from "./Tracing.js"
