import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { conformance } from "@creditlock/test-suite"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.js"

const dir = mkdtempSync(join(tmpdir(), "creditlock-sqlite-conformance-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

conformance("sqlite (file)", SqliteStorage.layer({ filename: join(dir, "conformance.sqlite") }))
conformance("sqlite (:memory:)", SqliteStorage.layer({ filename: ":memory:" }))
