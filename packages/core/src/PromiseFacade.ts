/**
 * The Promise facade: the engine as plain async functions for services that do not use Effect.
 * Failures reject with {@link CreditError}, which carries the error's `status`, `code`, `title`
 * and `detail`.
 *
 * @module
 */
import {
  Cause,
  Data,
  type Duration,
  Effect,
  Either,
  Exit,
  Layer,
  ManagedRuntime,
  Option,
  Predicate,
  Queue,
  Redacted,
  Scope,
} from "effect"
import {
  CreditEngine,
  type CreditEngineOptions,
  type JournalOptions,
  type LockKeyInput,
  type UnlockCustomerOptions,
  type WithLockOptions,
} from "./CreditEngine.js"
import type { CustomerLookup, UnlockCustomerResult } from "./CustomerUnlock.js"
import type { CreditEngineError } from "./Errors.js"
import type { CreditEvent } from "./Events.js"
import type { CreditView, HolderRef, OpenHolderOptions, OpenResult } from "./Holder.js"
import { validateOptions } from "./internal/options.js"
import { refusal } from "./internal/refusal.js"
import type { JournalPage, VerifyReport } from "./Journal.js"
import type { CreditLimitRequestInput, CreditLimitsView } from "./Limits.js"
import type { ExtendResult, LockOptions, LockRefused, LockResult } from "./Lock.js"
import type { ModifyRequestInput, ModifyResult } from "./Modification.js"
import type { Storage } from "./Storage.js"

/** A rejected operation of the Promise facade. `status` is the HTTP status of the cause. */
export class CreditError extends Error {
  override readonly name = "CreditError"
  /** The error's tag, e.g. `"CreditLocked"`; `"Defect"` for an unexpected failure. */
  readonly tag: string
  readonly status: number
  readonly code: string
  readonly title: string
  readonly detail: string
  /**
   * For the 423s: when the lock in the way expires (CreditLocked, LockKeyMismatch), or when the
   * caller's own lock expired (LockExpired). Absent otherwise.
   */
  readonly expiresAt: Date | undefined

  constructor(fields: {
    tag: string
    status: number
    code: string
    title: string
    detail: string
    expiresAt?: Date | undefined
    cause?: unknown
  }) {
    super(`${fields.title}: ${fields.detail}`, fields.cause === undefined ? undefined : { cause: fields.cause })
    this.tag = fields.tag
    this.status = fields.status
    this.code = fields.code
    this.title = fields.title
    this.detail = fields.detail
    this.expiresAt = fields.expiresAt
  }

  /**
   * The facade's view of a failed Effect: a typed engine error as itself; any other failure (a
   * storage layer that could not open reports its own error type) as a 503; a defect as a 500 that
   * reveals nothing of it (`defectDetail`).
   */
  static fromCause(cause: Cause.Cause<unknown>, defectDetail = "an unexpected error occurred"): CreditError {
    const failure = Cause.failureOption(cause)
    if (Option.isNone(failure)) {
      return new CreditError({
        tag: "Defect",
        status: 500,
        code: "INTERNAL",
        title: "Internal Server Error",
        detail: defectDetail,
        cause: Cause.squash(cause),
      })
    }
    const error: unknown = failure.value
    if (isEngineError(error)) return CreditError.fromEngineError(error)
    return new CreditError({
      tag: "StorageUnavailable",
      status: 503,
      code: "STORAGE_UNAVAILABLE",
      title: "Service Unavailable",
      detail: "the storage could not be opened",
      cause: error,
    })
  }

  /**
   * The facade's view of a typed engine error. A refusal (a 4xx) is built without a stack trace:
   * it would show the engine's runtime, never the caller's code, and contention makes refusals
   * the common case. Failures of the storage keep theirs.
   */
  static fromEngineError(error: CreditEngineError): CreditError {
    const make = () => CreditError.ofEngineError(error)
    return error.status < 500 ? refusal(make) : make()
  }

  private static ofEngineError(error: CreditEngineError): CreditError {
    return new CreditError({
      tag: error._tag,
      status: error.status,
      code: error.code,
      title: error.title,
      detail: error.detail,
      expiresAt: "expiresAt" in error ? error.expiresAt : "expiredAt" in error ? error.expiredAt : undefined,
      cause: error,
    })
  }
}

/** A granted lock with its key as a plain string (keep it out of logs), its expiry and fencing token. */
export interface PlainLockResult {
  readonly credit: CreditView
  readonly lock: { readonly key: string; readonly expiry: Date; readonly token: number }
}

/** What the facade's `tryLock` resolves to: the lock granted, or the refusal as a value. */
export type PlainTryLockResult = (PlainLockResult & { readonly granted: true }) | LockRefused

/** The engine's operations as async functions; see `CreditEngine` for each contract. */
export interface AsyncCreditEngine extends AsyncDisposable {
  openHolder(ref: HolderRef, options?: OpenHolderOptions): Promise<OpenResult>
  getCredit(ref: HolderRef): Promise<CreditView>
  lock(ref: HolderRef, options?: LockOptions): Promise<PlainLockResult>
  /**
   * `lock`, resolving with `{ granted: false, expiresAt }` when a live lock is in the way instead
   * of rejecting with CreditError `CREDIT_LOCKED` (see `CreditEngine.tryLock`).
   */
  tryLock(ref: HolderRef, options?: LockOptions): Promise<PlainTryLockResult>
  modify(ref: HolderRef, key: LockKeyInput, request: ModifyRequestInput): Promise<ModifyResult>
  /** Extends the live lock held with `key` (see `CreditEngine.extendLock`); `ttl` in ms or as text such as `"30 seconds"`. */
  extendLock(ref: HolderRef, key: LockKeyInput, ttl?: Duration.DurationInput): Promise<ExtendResult>
  unlock(ref: HolderRef, key: LockKeyInput): Promise<void>
  /**
   * Locks the holder, awaits `fn` with the lock, and releases it in every case (see
   * `CreditEngine.withLock`): contention is waited out for `options.wait` (default 30 s), and
   * `options.signal` gives up (the lock, if held, is released; the promise rejects with the
   * signal's reason). `fn` gets a signal that aborts when the call is given up. `fn`'s own
   * rejection is passed through as it is; a lock that did not hold to the end rejects with
   * CreditError `LOCK_EXPIRED` (or `LOCK_NOT_HELD` after an administrative unlock), even though
   * `fn` resolved — treat what `fn` did outside creditlock as unfenced.
   */
  withLock<A>(
    ref: HolderRef,
    fn: (locked: PlainLockResult, signal: AbortSignal) => Promise<A>,
    options?: WithLockOptions & { readonly signal?: AbortSignal | undefined },
  ): Promise<A>
  unlockCustomer(lookup: CustomerLookup, options?: UnlockCustomerOptions): Promise<UnlockCustomerResult>
  setCreditLimits(balanceGroupId: string, request: CreditLimitRequestInput): Promise<CreditLimitsView>
  getCreditLimits(balanceGroupId: string): Promise<CreditLimitsView>
  journal(ref: HolderRef, options?: JournalOptions): Promise<JournalPage>
  verify(ref: HolderRef): Promise<VerifyReport>
  /** Calls `listener` for each event published from now on; resolves to an unsubscribe function. */
  onEvent(listener: (event: CreditEvent) => void): Promise<() => Promise<void>>
  /** Releases the engine and its storage (closing connections the library opened). */
  close(): Promise<void>
}

/** A rejection of the caller's own function inside `withLock`, passed back to the caller as it is. */
class CallerFailure extends Data.TaggedError("CallerFailure")<{ readonly error: unknown }> {}

const isEngineError = (u: unknown): u is CreditEngineError =>
  Predicate.hasProperty(u, "_tag") && Predicate.hasProperty(u, "status") && Predicate.hasProperty(u, "code")

/** What a failed call rejects with: the caller's own error (from `withLock`'s function) as it is, else a {@link CreditError}. */
const rejection = (cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value instanceof CallerFailure) return failure.value.error
  return CreditError.fromCause(cause)
}

/** Options of {@link createCreditEngine}: a storage layer (e.g. `MemoryStorage.layer()`) and engine settings. */
export interface CreateCreditEngineOptions<E> extends CreditEngineOptions {
  readonly storage: Layer.Layer<Storage, E>
}

/**
 * Builds an engine over `storage` and returns it as async functions. The storage is acquired on
 * the first call and released by `close()` (or `await using`). Engine options outside their
 * documented ranges (or unknown ones) throw a {@link CreditError} (400) at once.
 */
export const createCreditEngine = <E>(options: CreateCreditEngineOptions<E>): AsyncCreditEngine => {
  const { storage, ...engineOptions } = options
  const checked = validateOptions(engineOptions)
  if (Either.isLeft(checked)) throw CreditError.fromEngineError(checked.left)
  const runtime = ManagedRuntime.make(CreditEngine.layer(engineOptions).pipe(Layer.provide(storage)))

  // The engine is taken from the runtime by the first call and reused by every later one.
  let resolved: CreditEngine["Type"] | undefined
  const withEngine = <A, E>(f: (engine: CreditEngine["Type"]) => Effect.Effect<A, E>) =>
    resolved === undefined
      ? Effect.flatMap(CreditEngine, (e) => {
          resolved = e
          return f(e)
        })
      : f(resolved)

  const run = async <A>(f: (engine: CreditEngine["Type"]) => Effect.Effect<A, CreditEngineError>): Promise<A> => {
    const exit = await runtime.runPromiseExit(withEngine(f))
    if (Exit.isSuccess(exit)) return exit.value
    throw rejection(exit.cause)
  }

  const close = () => runtime.dispose()

  const plain = (r: LockResult): PlainLockResult => ({
    credit: r.credit,
    lock: { key: Redacted.value(r.lock.key), expiry: r.lock.expiry, token: r.lock.token },
  })

  const withLock: AsyncCreditEngine["withLock"] = async (ref, fn, options = {}) => {
    const { signal, ...lockOptions } = options
    const program = withEngine((e) =>
      e.withLock(
        ref,
        (locked) =>
          Effect.tryPromise({
            try: (aborted) => fn(plain(locked), aborted),
            catch: (error) => new CallerFailure({ error }),
          }),
        lockOptions,
      ),
    )
    const exit = await runtime.runPromiseExit(program, signal === undefined ? undefined : { signal })
    if (Exit.isSuccess(exit)) return exit.value
    if (signal?.aborted === true && Cause.isInterruptedOnly(exit.cause)) throw signal.reason
    throw rejection(exit.cause)
  }

  return {
    openHolder: (ref, opts) => run((e) => e.openHolder(ref, opts)),
    getCredit: (ref) => run((e) => e.getCredit(ref)),
    lock: (ref, opts) => run((e) => e.lock(ref, opts)).then(plain),
    tryLock: (ref, opts) =>
      run((e) => e.tryLock(ref, opts)).then((r) => (r.granted ? { granted: true, ...plain(r) } : r)),
    modify: (ref, key, request) => run((e) => e.modify(ref, key, request)),
    extendLock: (ref, key, ttl) => run((e) => e.extendLock(ref, key, ttl)),
    unlock: (ref, key) => run((e) => e.unlock(ref, key)),
    withLock,
    unlockCustomer: (lookup, opts) => run((e) => e.unlockCustomer(lookup, opts)),
    setCreditLimits: (id, request) => run((e) => e.setCreditLimits(id, request)),
    getCreditLimits: (id) => run((e) => e.getCreditLimits(id)),
    journal: (ref, opts) => run((e) => e.journal(ref, opts)),
    verify: (ref) => run((e) => e.verify(ref)),
    onEvent: async (listener) => {
      const scope = await runtime.runPromise(Scope.make())
      const queue = await runtime.runPromise(Effect.flatMap(CreditEngine, (e) => Scope.extend(e.subscribe, scope)))
      const pump = runtime.runFork(
        Queue.take(queue).pipe(
          Effect.flatMap((event) => Effect.sync(() => listener(event))),
          Effect.forever,
        ),
      )
      return async () => {
        await runtime.runPromise(Effect.andThen(pump.interruptAsFork(pump.id()), Scope.close(scope, Exit.void)))
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}
