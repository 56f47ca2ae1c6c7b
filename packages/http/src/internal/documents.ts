/**
 * `/docs` and `/openapi.json` as a browser should get them: with a `servers` entry, an `ETag` (a
 * 304 to a matching `If-None-Match`), `Cache-Control`, and the body compressed with Brotli or gzip
 * when the client accepts it.
 *
 * The `servers` entry is the configured public URL when there is one. Otherwise `/openapi.json`
 * names the URL the request came to: `http` (or `https` when `X-Forwarded-Proto` says so), the
 * `Host` header (the URL itself for a web handler's `Request`) and the path the API is mounted
 * under (Express's `req.baseUrl`); and the document embedded in `/docs` names that mount path
 * alone, which Swagger UI resolves against the page's own address — so "Try it out" calls the
 * server the browser loaded the page from, whatever host or proxy it came through. A Host header
 * that is not a host name (or address) and port gives the mount path alone as well.
 *
 * Each served variant (document and `servers` URL) is computed once — its ETag from its own
 * bytes, its compressed bodies when first asked for — and kept among the most recently served
 * {@link MAX_VARIANTS}.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import { brotliCompressSync, constants, gzipSync } from "node:zlib"
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"

interface Prepared {
  readonly body: Uint8Array
  readonly etag: string
  br: Uint8Array | undefined
  gzip: Uint8Array | undefined
}

/** How many variants of the documents are kept prepared. */
export const MAX_VARIANTS = 32

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Where the API is reached, for the documents' `servers` entry. */
export interface DocumentOptions {
  /** The configured public URL (absolute, without a trailing slash); none: derived from each request. */
  readonly publicUrl?: string | undefined
}

const HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i
const MOUNT_PATH = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/

/** The path the API is mounted under: Express's `req.baseUrl`, or none. */
const mountPathOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const source = request.source as { readonly baseUrl?: unknown } | null
  const base = typeof source === "object" && source !== null ? source.baseUrl : undefined
  return typeof base === "string" && base.length <= 1024 && MOUNT_PATH.test(base) ? base : ""
}

/** The origin the request came to, or none when its Host header is missing or not a host. */
const originOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  if (request.source instanceof Request) {
    try {
      const url = new URL(request.source.url)
      return url.protocol === "http:" || url.protocol === "https:" ? url.origin : undefined
    } catch {
      return undefined
    }
  }
  const host = request.headers.host
  if (host === undefined || host.length > 300 || !HOST.test(host)) return undefined
  const forwarded = request.headers["x-forwarded-proto"]?.split(",")[0]?.trim().toLowerCase()
  return `${forwarded === "https" ? "https" : "http"}://${host.toLowerCase()}`
}

/** The JSON of a document with `servers` (after `info`, where OpenAPI documents usually have it). */
const withServers = (document: Record<string, unknown>, url: string): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(document)) {
    if (key === "servers") continue
    out[key] = value
    if (key === "info") out.servers = [{ url }]
  }
  if (!("servers" in out)) out.servers = [{ url }]
  return out
}

const SPEC_START = '<script id="swagger-spec" type="application/json">'
const SPEC_END = "</script>"

/** JSON safe inside a `<script>` element (as Swagger UI's page embeds it). */
const scriptJson = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/[\u2028\u2029]/g, (c) => (c === "\u2028" ? "\\u2028" : "\\u2029"))

/** A document's parts, read once per body the router serves. */
type Parsed =
  | { readonly _tag: "Json"; readonly document: Record<string, unknown> }
  | {
      readonly _tag: "Page"
      readonly before: string
      readonly document: Record<string, unknown>
      readonly after: string
    }
  | { readonly _tag: "Opaque" }

const parse = (body: Uint8Array, contentType: string): Parsed => {
  const text = decoder.decode(body)
  try {
    if (contentType.startsWith("application/json")) {
      const document: unknown = JSON.parse(text)
      return typeof document === "object" && document !== null && !Array.isArray(document)
        ? { _tag: "Json", document: document as Record<string, unknown> }
        : { _tag: "Opaque" }
    }
    const start = text.indexOf(SPEC_START)
    const end = start < 0 ? -1 : text.indexOf(SPEC_END, start + SPEC_START.length)
    if (end < 0) return { _tag: "Opaque" }
    const document: unknown = JSON.parse(text.slice(start + SPEC_START.length, end))
    return typeof document === "object" && document !== null && !Array.isArray(document)
      ? {
          _tag: "Page",
          before: text.slice(0, start + SPEC_START.length),
          document: document as Record<string, unknown>,
          after: text.slice(end),
        }
      : { _tag: "Opaque" }
  } catch {
    return { _tag: "Opaque" }
  }
}

const prepareBody = (body: Uint8Array): Prepared => ({
  body,
  etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 32)}"`,
  br: undefined,
  gzip: undefined,
})

/** Whether the `Accept-Encoding` header accepts `coding` (listed, and not with q=0). */
const accepts = (header: string | undefined, coding: string): boolean =>
  (header ?? "")
    .toLowerCase()
    .split(",")
    .map((part) => part.trim().split(";"))
    .some(([name, ...params]) => name === coding && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p)))

/** How long browsers and caches may keep a document without asking again. */
export const DOCUMENT_CACHE_CONTROL = "public, max-age=300"

/**
 * The documents' responses: each with its `servers` entry, ETag, Cache-Control and compression;
 * other responses unchanged.
 */
export const makeDocuments = (
  options: DocumentOptions = {},
): ((
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse,
) => HttpServerResponse.HttpServerResponse) => {
  const parsed = new WeakMap<Uint8Array, Parsed>()
  // Keyed by the served body's source and the servers URL; the map's order is the order of use.
  const variants = new Map<string, Prepared>()
  const sources = new WeakMap<Uint8Array, number>()
  let nextSource = 0

  const variant = (body: Uint8Array, contentType: string, url: string | undefined): Prepared => {
    let source = sources.get(body)
    if (source === undefined) {
      source = nextSource++
      sources.set(body, source)
    }
    const key = `${source} ${url ?? ""}`
    const known = variants.get(key)
    if (known !== undefined) {
      variants.delete(key)
      variants.set(key, known)
      return known
    }
    let parts = parsed.get(body)
    if (parts === undefined) {
      parts = parse(body, contentType)
      parsed.set(body, parts)
    }
    const served =
      url === undefined || parts._tag === "Opaque"
        ? body
        : parts._tag === "Json"
          ? encoder.encode(JSON.stringify(withServers(parts.document, url)))
          : encoder.encode(`${parts.before}\n    ${scriptJson(withServers(parts.document, url))}\n  ${parts.after}`)
    const made = prepareBody(served)
    variants.set(key, made)
    if (variants.size > MAX_VARIANTS) {
      const oldest = variants.keys().next()
      if (oldest.done !== true) variants.delete(oldest.value)
    }
    return made
  }

  return (request, response) => {
    if (response.status !== 200 || response.body._tag !== "Uint8Array") return response
    const body = response.body.body
    const contentType = response.body.contentType
    const page = !contentType.startsWith("application/json")
    const mountPath = mountPathOf(request)
    const origin = options.publicUrl === undefined && !page ? originOf(request) : undefined
    const url = options.publicUrl ?? (origin === undefined ? mountPath || "/" : `${origin}${mountPath}`)
    const prepared = variant(body, contentType, url)
    const { etag } = prepared
    const headers = {
      etag,
      "cache-control": DOCUMENT_CACHE_CONTROL,
      // A derived absolute URL depends on X-Forwarded-Proto (and on Host, part of every cache key).
      vary: origin === undefined ? "accept-encoding" : "accept-encoding, x-forwarded-proto",
    }
    const match = request.headers["if-none-match"]
    if (match?.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) {
      return HttpServerResponse.empty({ status: 304, headers })
    }
    const encoding = request.headers["accept-encoding"]
    if (accepts(encoding, "br")) {
      prepared.br ??= brotliCompressSync(prepared.body, { params: { [constants.BROTLI_PARAM_QUALITY]: 6 } })
      return HttpServerResponse.uint8Array(prepared.br, {
        contentType,
        headers: { ...headers, "content-encoding": "br" },
      })
    }
    if (accepts(encoding, "gzip")) {
      prepared.gzip ??= gzipSync(prepared.body, { level: 6 })
      return HttpServerResponse.uint8Array(prepared.gzip, {
        contentType,
        headers: { ...headers, "content-encoding": "gzip" },
      })
    }
    return HttpServerResponse.uint8Array(prepared.body, { contentType, headers })
  }
}
