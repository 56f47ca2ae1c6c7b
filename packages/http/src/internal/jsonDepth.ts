/**
 * A bound on how deeply a JSON text nests, checked on the raw text before it is parsed.
 *
 * Parsing a deeply nested body is cheap for `JSON.parse`, but everything after it walks the value
 * recursively (schema decoding, the formatting of a decode error): about 8,000 nested arrays — 16
 * KB, well within the body limit — overflow the stack there. The scan below is a single loop over
 * the characters with a counter: it recurses into nothing, so no input can make it overflow.
 *
 * @module
 * @internal
 */

/** The deepest nesting of arrays and objects a request body may have. */
export const MAX_JSON_DEPTH = 64

/** Why a body nesting deeper than {@link MAX_JSON_DEPTH} is refused (the detail of its 400). */
export const JSON_DEPTH_DETAIL = `the JSON body nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep; at most ${MAX_JSON_DEPTH} are accepted`

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d

/**
 * Whether `text` nests arrays or objects more than `max` levels deep (`[]` and `{}` are one level).
 * Brackets inside strings do not count; `\"` and `\\` inside strings are escapes. The scan stops
 * at the first bracket beyond `max`.
 *
 * For valid JSON the answer is exact. For invalid JSON it may be either (a stray closing bracket
 * can hide an opening one), which does not matter: such a text is refused by the parser anyway.
 */
export const exceedsJsonDepth = (text: string, max: number = MAX_JSON_DEPTH): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      depth++
      if (depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return false
}

/**
 * Whether an already-parsed JSON value nests arrays or objects more than `max` levels deep, by the
 * same count as {@link exceedsJsonDepth}. An explicit stack, no recursion; it stops at the first
 * container beyond `max`.
 */
export const valueExceedsDepth = (value: unknown, max: number = MAX_JSON_DEPTH): boolean => {
  const pending: Array<readonly [value: unknown, depth: number]> = [[value, 1]]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [current, depth] = next
    if (typeof current !== "object" || current === null) continue
    if (depth > max) return true
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === "object" && child !== null) pending.push([child, depth + 1])
    }
  }
  return false
}
