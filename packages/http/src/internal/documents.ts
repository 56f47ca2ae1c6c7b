/**
 * `/docs` and `/openapi.json` as a browser should get them: an `ETag` (a 304 to a matching
 * `If-None-Match`), `Cache-Control`, and the body compressed with Brotli or gzip when the client
 * accepts it. Both documents are the same bytes for the server's lifetime, so the tag and the
 * compressed bodies are computed once per body.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import { brotliCompressSync, constants, gzipSync } from "node:zlib"
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"

interface Prepared {
  readonly etag: string
  readonly br: Uint8Array
  readonly gzip: Uint8Array
}

const prepared = new WeakMap<Uint8Array, Prepared>()

const prepare = (body: Uint8Array): Prepared => {
  const known = prepared.get(body)
  if (known !== undefined) return known
  const made = {
    etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 32)}"`,
    br: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }),
    gzip: gzipSync(body, { level: 9 }),
  }
  prepared.set(body, made)
  return made
}

/** Whether the `Accept-Encoding` header accepts `coding` (listed, and not with q=0). */
const accepts = (header: string | undefined, coding: string): boolean =>
  (header ?? "")
    .toLowerCase()
    .split(",")
    .map((part) => part.trim().split(";"))
    .some(([name, ...params]) => name === coding && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p)))

/** How long browsers and caches may keep a document without asking again. */
export const DOCUMENT_CACHE_CONTROL = "public, max-age=300"

/** The response for a document, with ETag, Cache-Control and compression; other responses unchanged. */
export const documentResponse = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse,
): HttpServerResponse.HttpServerResponse => {
  if (response.status !== 200 || response.body._tag !== "Uint8Array") return response
  const body = response.body.body
  const contentType = response.body.contentType
  const { etag, br, gzip } = prepare(body)
  const headers = { etag, "cache-control": DOCUMENT_CACHE_CONTROL, vary: "accept-encoding" }
  const match = request.headers["if-none-match"]
  if (match?.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) {
    return HttpServerResponse.empty({ status: 304, headers })
  }
  const encoding = request.headers["accept-encoding"]
  if (accepts(encoding, "br")) {
    return HttpServerResponse.uint8Array(br, { contentType, headers: { ...headers, "content-encoding": "br" } })
  }
  if (accepts(encoding, "gzip")) {
    return HttpServerResponse.uint8Array(gzip, { contentType, headers: { ...headers, "content-encoding": "gzip" } })
  }
  return HttpServerResponse.uint8Array(body, { contentType, headers })
}
