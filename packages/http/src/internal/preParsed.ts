/**
 * Request bodies that middleware read before the API did (Express's `express.json()`,
 * `express.urlencoded()`, `express.text()`, `express.raw()`, body-parser, …): the stream is
 * consumed, and what it held is in `req.body`.
 *
 * Such a body is encoded again as the bytes the API would have read — a Buffer as itself, a string
 * as UTF-8, a form as `application/x-www-form-urlencoded` text, anything else as JSON text — and
 * checked by the guard exactly like a body read from the stream: the original `Content-Length`
 * against the body limit, then the re-encoded bytes against it, the media type, the JSON nesting,
 * the schema of the route. Where the body cannot be restored (the stream was read but nothing was
 * left in `req.body`; a form parsed into nested values), the request is refused with a problem
 * that names the cause and the fix, never served with a body it did not send.
 *
 * @module
 * @internal
 */
import { IncomingMessage } from "node:http"
import { InvalidRequest } from "@creditlock/core"
import { InternalError } from "../Problem.js"
import { JSON_DEPTH_DETAIL, valueExceedsDepth } from "./jsonDepth.js"

/** What middleware left of a body it read: the bytes to use instead of the stream, or why there are none. */
export type BodyReadBefore =
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  | { readonly _tag: "Refused"; readonly error: InvalidRequest | InternalError }

const formMedia = "application/x-www-form-urlencoded"

const utf8 = new TextEncoder()

const refused = (error: InvalidRequest | InternalError): BodyReadBefore => ({ _tag: "Refused", error })

const bytes = (value: Uint8Array): BodyReadBefore => ({ _tag: "Bytes", bytes: value })

/**
 * Whether the stream was read before the API: it has ended, or body-parser marked it parsed
 * (`_body`, set by body-parser 1.x, the parser of Express 4).
 */
const consumed = (request: IncomingMessage): boolean =>
  request.readableEnded || (request as IncomingMessage & { readonly _body?: unknown })._body === true

/** A parsed form as its text; undefined when a value is not a string or a list of strings. */
const formText = (body: object): string | undefined => {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(body)) {
    if (typeof value === "string") params.append(key, value)
    else if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
      for (const item of value) params.append(key, item)
    } else return undefined
  }
  return params.toString()
}

const jsonText = (body: unknown): string | undefined => {
  try {
    const text: unknown = JSON.stringify(body)
    return typeof text === "string" ? text : undefined
  } catch {
    return undefined
  }
}

/**
 * The body of a `node:http` request that middleware already read, encoded again; `undefined` when
 * the API reads the stream itself (not a `node:http` request, or its stream is unread).
 */
export const bodyReadBefore = (source: unknown, mediaType: string | undefined): BodyReadBefore | undefined => {
  if (!(source instanceof IncomingMessage) || !consumed(source)) return undefined
  const body: unknown = (source as IncomingMessage & { readonly body?: unknown }).body
  if (body === undefined) {
    return refused(
      new InternalError({
        detail:
          "the request body was read by middleware that runs before the credit API and left nothing in req.body; mount the credit API before that middleware",
      }),
    )
  }
  if (body instanceof Uint8Array) return bytes(body)
  if (typeof body === "string") return bytes(utf8.encode(body))
  if (mediaType === formMedia) {
    const text = typeof body === "object" && body !== null && !Array.isArray(body) ? formText(body) : undefined
    return text === undefined
      ? refused(
          new InvalidRequest({
            detail:
              "the form body was parsed by middleware that runs before the credit API into nested values, which the API does not accept; mount the credit API before the body parser, or parse forms flat (express.urlencoded({ extended: false }))",
          }),
        )
      : bytes(utf8.encode(text))
  }
  // Checked before encoding: JSON.stringify recurses into the value.
  if (valueExceedsDepth(body)) return refused(new InvalidRequest({ detail: JSON_DEPTH_DETAIL }))
  const text = jsonText(body)
  return text === undefined
    ? refused(
        new InvalidRequest({
          detail:
            "the body was parsed by middleware that runs before the credit API into a value that is not JSON; mount the credit API before that middleware",
        }),
      )
    : bytes(utf8.encode(text))
}
