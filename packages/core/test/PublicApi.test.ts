/**
 * The public surface of @creditlock/core, pinned: the names each entry point exports (values and
 * types), and the layout rule behind them — a public module (`src/*.ts`) exports only names an
 * entry point re-exports, and no entry point reaches into `src/internal/`. A change to the surface
 * is a change to this list, and to the "Public API" section of the README.
 */
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const src = fileURLToPath(new URL("../src/", import.meta.url))

const entryPoints = {
  ".": `${src}index.ts`,
  "./storage": `${src}Storage.ts`,
} as const

const expected: Record<keyof typeof entryPoints, ReadonlyArray<string>> = {
  ".": [
    // engine and Promise facade
    "CreditEngine",
    "CreditEngineOptions",
    "DEFAULT_ENGINE_OPTIONS",
    "JournalOptions",
    "LockKeyInput",
    "UnlockCustomerOptions",
    "WithLockOptions",
    "AsyncCreditEngine",
    "CreateCreditEngineOptions",
    "CreditError",
    "createCreditEngine",
    "PlainLockResult",
    "PlainTryLockResult",
    "Storage",
    // holders, locks, modifications, customer unlock
    "Balance",
    "Credit",
    "CreditView",
    "HolderRef",
    "HolderType",
    "OpenHolderOptions",
    "OpenResult",
    "ExtendedLock",
    "ExtendResult",
    "GrantedLock",
    "LockOptions",
    "LockResult",
    "LockRefused",
    "TryLockResult",
    "Modification",
    "ModifyRequest",
    "ModifyRequestInput",
    "ModifyResult",
    "CustomerLookup",
    "UnlockCustomerResult",
    // credit limits
    "CreditLimitRequest",
    "CreditLimitRequestInput",
    "CreditLimitsView",
    "LimitAmount",
    "ReachedThresholds",
    "ResourceLimits",
    "ResourceLimitsView",
    "TemporaryLimit",
    "ThresholdRecord",
    // journal and events
    "Change",
    "CurrencyCheck",
    "JournalEntry",
    "JournalKind",
    "JournalPage",
    "VerifyReport",
    "AdminUnlocked",
    "CreditEvent",
    "LockExpiredTakenOver",
    "LockExtended",
    "LockGranted",
    "LockReleased",
    "ThresholdCrossed",
    // errors
    "AmountOutOfRange",
    "CreditEngineError",
    "CreditEngineErrorTag",
    "CreditLimitExceeded",
    "CreditLocked",
    "DuplicateCreditType",
    "Forbidden",
    "HolderNotFound",
    "IdempotencyConflict",
    "InsufficientCredit",
    "InvalidRequest",
    "LockExpired",
    "LockKeyMismatch",
    "LockNotHeld",
    "OutcomeUnknown",
    "RateLimited",
    "StorageUnavailable",
    "Unauthorized",
    "UnlockIncomplete",
    "UnsupportedResource",
    // metrics
    "engineOperations",
    "engineOperationDuration",
    "engineLockRefusals",
    "engineCommitConflicts",
    "engineCommitRetries",
    "engineLockWait",
    "engineLockHold",
    "engineThresholdEvents",
    // currencies
    "CurrencyCode",
    "CurrencyInfo",
    "currencyByCode",
    "currencyByNumeric",
    "ISO_4217_PUBLISHED",
    "isActiveCurrency",
    "isListedNumeric",
    "MinorUnitsFailure",
    "toMajorUnits",
    "toMinorUnits",
  ],
  "./storage": [
    // the contract
    "Storage",
    "CommitRequest",
    "CommitResult",
    "EntrySelector",
    "ExpectedRevision",
    "IndexKey",
    "JournalRange",
    "LookupKey",
    "StoredHolder",
    // the codec and the engine's keys
    "decodeDocument",
    "encodeDocument",
    "entryIndexKeys",
    "holderIndexKeys",
    "holderKey",
    // what the contract's values are made of
    "OutcomeUnknown",
    "StorageUnavailable",
    "Balance",
    "HolderDocument",
    "HolderRef",
    "HolderType",
    "Change",
    "JournalEntry",
    "JournalKind",
    "LimitAmount",
    "ReachedThresholds",
    "ResourceLimits",
    "TemporaryLimit",
    "ThresholdRecord",
    "LockState",
  ],
}

const program = ts.createProgram(Object.values(entryPoints), {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  types: [],
})
const checker = program.getTypeChecker()

/** The exports of a module, each with the files that declare what it names. */
const exportsOf = (file: string): ReadonlyMap<string, ReadonlyArray<string>> => {
  const source = program.getSourceFile(file)
  const symbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
  if (symbol === undefined) throw new Error(`${file} is not a module`)
  return new Map(
    checker.getExportsOfModule(symbol).map((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
      return [s.name, (target.declarations ?? []).map((d) => d.getSourceFile().fileName)]
    }),
  )
}

const publicModules = program
  .getSourceFiles()
  .map((f) => f.fileName)
  .filter((f) => f.startsWith(src) && !f.slice(src.length).includes("/") && !f.endsWith("/index.ts"))

describe("the public API", () => {
  for (const [entry, file] of Object.entries(entryPoints)) {
    it(`@creditlock/core${entry.slice(1)} exports exactly the documented names`, () => {
      const names = [...exportsOf(file).keys()].sort()
      expect(names).toEqual([...expected[entry as keyof typeof entryPoints]].sort())
    })

    it(`@creditlock/core${entry.slice(1)} exports nothing from src/internal/`, () => {
      const internal = [...exportsOf(file)].filter(([, files]) => files.some((f) => f.includes("/src/internal/")))
      expect(internal.map(([name]) => name)).toEqual([])
    })
  }

  it("every export of a public module is on an entry point (the rest lives in src/internal/)", () => {
    const published = new Set(Object.values(entryPoints).flatMap((file) => [...exportsOf(file).keys()]))
    const unpublished = publicModules.flatMap((module) =>
      [...exportsOf(module).keys()]
        .filter((name) => !published.has(name))
        .map((name) => `${module.slice(src.length)}: ${name}`),
    )
    expect(publicModules.length).toBeGreaterThan(10)
    expect(unpublished).toEqual([])
  })
})
