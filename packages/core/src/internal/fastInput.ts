/**
 * Fast checks of the inputs on the hot paths — holder refs, lock keys, modify requests and lock
 * options — for the engine's decoders. Each check answers the decoded value only for plain data
 * that the schema accepts and decodes to that same value, using the schema's own rules (the
 * predicates of `schemas.ts`, the literals of the schemas); anything else — a class instance, a
 * missing, extra or symbol key, an array with holes, a value it does not recognise — answers
 * `undefined`, and the engine decodes the input with the schema, which also says what is wrong.
 * A property test compares each check with its schema.
 *
 * @internal
 */

import { Schema } from "effect"
import { isActiveCurrency } from "../Currency.js"
import { type HolderRef, HolderType } from "../Holder.js"
import { Modification, type ModifyRequest } from "../Modification.js"
import {
  changeValueIssue,
  idIssue,
  lockKeyIssue,
  MAX_REASON_LENGTH,
  Reference,
  reasonIssue,
  referenceIssue,
} from "./schemas.js"

/** The schema of `lock` options (the fast check below answers its common case, none). */
export const LockOptionsSchema = Schema.Struct({ reference: Schema.optional(Reference) })

/**
 * Whether `value` is a plain object (prototype `Object.prototype` or `null`; no array or class
 * instance) with exactly `keys` own keys, symbols and non-enumerable keys counted.
 */
export const plainWith = (value: unknown, keys: number): value is Readonly<Record<string, unknown>> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return (proto === Object.prototype || proto === null) && Reflect.ownKeys(value).length === keys
}

const has = (value: object, key: string): boolean => Object.hasOwn(value, key)

const holderTypes: ReadonlyArray<unknown> = HolderType.literals
const modificationTypes: ReadonlyArray<unknown> = Modification.fields.type.literals

const isId = (value: unknown): value is string => typeof value === "string" && idIssue(value) === true

/** A holder ref: `{ customerId, holderType, holderId }` and nothing else. */
export const fastRef = (input: unknown): HolderRef | undefined => {
  if (!plainWith(input, 3) || !has(input, "customerId") || !has(input, "holderType") || !has(input, "holderId")) {
    return undefined
  }
  const { customerId, holderType, holderId } = input
  if (!isId(customerId) || !isId(holderId) || !holderTypes.includes(holderType)) return undefined
  return { customerId, holderType: holderType as HolderType, holderId }
}

/** A lock key handed in as a string. */
export const fastKey = (input: unknown): string | undefined =>
  typeof input === "string" && lockKeyIssue(input) === true ? input : undefined

/** Lock options without any option (`{}`), the common case. */
export const fastLockOptions = (input: unknown): { readonly reference?: string } | undefined =>
  plainWith(input, 0) ? {} : undefined

const fastModification = (input: unknown): Modification | undefined => {
  if (!plainWith(input, 2) || !has(input, "type") || !has(input, "changeAmount")) return undefined
  const { type, changeAmount } = input
  if (!modificationTypes.includes(type) || !plainWith(changeAmount, 2)) return undefined
  if (!has(changeAmount, "currencyCode") || !has(changeAmount, "value")) return undefined
  const { currencyCode, value } = changeAmount
  if (typeof currencyCode !== "string" || !isActiveCurrency(currencyCode)) return undefined
  if (typeof value !== "number" || changeValueIssue(value) !== true) return undefined
  return { type: type as Modification["type"], changeAmount: { currencyCode, value } }
}

/** A modify request: `{ reason, modifications, reference? }`. */
export const fastModify = (input: unknown): ModifyRequest | undefined => {
  if (typeof input !== "object" || input === null) return undefined
  const referenced = has(input, "reference")
  if (!plainWith(input, referenced ? 3 : 2) || !has(input, "reason") || !has(input, "modifications")) return undefined
  const { reason, modifications, reference } = input
  if (typeof reason !== "string" || reasonIssue(reason) !== true || reason.length > MAX_REASON_LENGTH) return undefined
  if (referenced && (typeof reference !== "string" || referenceIssue(reference) !== true)) return undefined
  if (!Array.isArray(modifications) || modifications.length === 0) return undefined
  const decoded: Array<Modification> = []
  // By index: holes read as undefined (refused), and an array's own iterator is never called.
  for (let i = 0; i < modifications.length; i++) {
    const modification = fastModification(modifications[i])
    if (modification === undefined) return undefined
    decoded.push(modification)
  }
  return referenced
    ? { reason, modifications: decoded, reference: reference as string }
    : { reason, modifications: decoded }
}
