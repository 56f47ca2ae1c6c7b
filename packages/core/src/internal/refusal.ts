/**
 * Refusals are the normal case of a lock under contention, so they are built cheaply: without a
 * stack trace (it would point into the engine's planner, never at the caller) and without
 * validating fields the engine itself fills in.
 *
 * @internal
 */

/** Runs `make` (which builds an error) with stack capture switched off. */
export const refusal = <E>(make: () => E): E => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}
