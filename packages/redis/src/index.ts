/**
 * @creditlock/redis: the `Storage` for @creditlock/core on Redis (ioredis), standalone or Cluster.
 *
 * @module
 */
export * as RedisStorage from "./RedisStorage.js"
