import { MemoryStorage } from "@creditlock/memory"
import { conformance } from "@creditlock/test-suite"

conformance("memory", MemoryStorage.layer())
