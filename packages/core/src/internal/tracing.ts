/**
 * Spans only when somebody listens. Under Effect's default tracer spans are exported nowhere, yet
 * making one changes the fiber's context, and annotating the current span when there is none
 * builds an exception: so an operation makes and annotates its span only under another tracer,
 * checked on every call (a tracer provided for one call, `Effect.withTracer`, gets its spans).
 *
 * @internal
 */
import { Effect } from "effect"

/** The tracer of a runtime nobody configured. */
export const defaultTracer = Effect.runSync(Effect.tracer)

/** `effect` in a span named `name`, under a tracer other than the default; `effect` as it is otherwise. */
export const traced =
  (name: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) =>
      tracer === defaultTracer ? effect : Effect.withSpan(effect, name, { captureStackTrace: false }),
    )

/** Annotates the current span, under a tracer other than the default (a no-op otherwise). */
export const annotate = (key: string, value: unknown): Effect.Effect<void> =>
  Effect.tracerWith((tracer) => (tracer === defaultTracer ? Effect.void : Effect.annotateCurrentSpan(key, value)))
