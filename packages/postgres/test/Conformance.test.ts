import { conformance } from "@creditlock/test-suite"
import { freshDatabase } from "@creditlock/test-suite/postgres-server"
import { afterAll } from "vitest"
import { PostgresStorage } from "../src/index.js"

// Fails the whole file, saying how to install and start PostgreSQL, when the server is not there.
const database = await freshDatabase()
afterAll(() => database.drop())

conformance("postgres", PostgresStorage.layer({ connectionString: database.url, poolSize: 4 }))
// Every statement again in a schema of another name (quoted identifiers); the slow properties shorter.
conformance(
  "postgres (schema of its own)",
  PostgresStorage.layer({ connectionString: database.url, schema: "credit_other", poolSize: 4 }),
  { model: { numRuns: 40 }, races: { schedulerRuns: 15 } },
)
