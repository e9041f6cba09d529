/**
 * The step protocol, version 1 (docs/step-protocol.md), engine side: the requests interleave
 * writes and a strict reader of the trainer's replies. Pure: no process, no I/O.
 *
 * Replies are checked field by field by hand (a step's reply is read in microseconds); whatever
 * does not match the page is a `ProtocolViolation` naming what was wrong, which the session turns
 * into an `adapter-error`.
 */
import type { MemorySample } from "../../core/log/index.ts"
import type { Reproducibility } from "../../core/run/index.ts"
import { planFields, type StepPlan } from "../../core/schedule/index.ts"

export const PROTOCOL_VERSION = 1

export type Request =
  | {
      readonly type: "hello"
      readonly id: 0
      readonly protocol: number
      readonly spec: unknown
      readonly options: Readonly<Record<string, unknown>>
    }
  | { readonly type: "step"; readonly id: number; readonly plan: StepPlan }
  | { readonly type: "checkpoint" | "restore"; readonly id: number; readonly path: string }
  | { readonly type: "evaluate" | "close"; readonly id: number }

export type RequestType = Request["type"]

/** The reply type that answers each request type (besides `failure`). */
export const ANSWER: Readonly<Record<RequestType, ReplyType>> = {
  hello: "ready",
  step: "outcome",
  checkpoint: "checkpointed",
  restore: "restored",
  evaluate: "evaluation",
  close: "closed",
}

export interface Ready {
  readonly type: "ready"
  readonly id: number
  readonly protocol: number
  readonly trainer: { readonly name: string; readonly version: string }
  readonly device: string
  readonly framework: string
  readonly stateless: boolean
  readonly capabilities: { readonly evaluate: boolean; readonly checkpoint: boolean }
  readonly info: Readonly<Record<string, string>>
  /** Optional extension of version 1: how exactly a re-execution reproduces the run. */
  readonly reproducible?: Reproducibility | undefined
  /**
   * Optional extension of version 1: what exact reproduction depends on (framework build, BLAS
   * library, threads, CPU / GPU model), strings only; recorded in RunStarted.adapter.environment.
   */
  readonly environment?: Readonly<Record<string, string>> | undefined
}

export interface Outcome {
  readonly type: "outcome"
  readonly id: number
  readonly step: number
  readonly losses: Readonly<Record<string, number>>
  readonly durationMs: number
  readonly samples: number
  readonly memory: MemorySample
}

export interface Failure {
  readonly type: "failure"
  readonly id: number | null
  readonly kind: string
  readonly message: string
}

export interface Evaluation {
  readonly type: "evaluation"
  readonly id: number
  readonly metric: string
  readonly values: { readonly visual: number; readonly text: number }
  readonly chance?: number | undefined
}

export interface PathReply {
  readonly type: "checkpointed" | "restored"
  readonly id: number
  readonly path: string
}

export interface Closed {
  readonly type: "closed"
  readonly id: number
}

export type Reply = Ready | Outcome | Failure | Evaluation | PathReply | Closed
export type ReplyType = Reply["type"]

/** Why a line from the trainer is not a valid reply. */
export class ProtocolViolation {
  readonly _tag = "ProtocolViolation"
  constructor(readonly reason: string) {}
}

export const TRAINER_FAILURE_KINDS = ["nan-loss", "out-of-memory", "device-lost", "trainer-error"] as const
export const MEMORY_KEYS = [
  "allocatedBytes",
  "reservedBytes",
  "peakBytes",
  "deviceBytes",
  "rssBytes",
] as const

/** A line as it can be quoted in a message: one line, at most `max` characters. */
export const quote = (line: string, max = 160): string => {
  const one = line.replace(/\s+/g, " ").trim()
  return JSON.stringify(one.length > max ? `${one.slice(0, max - 1)}…` : one)
}

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v)
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v)
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)

class Bad extends Error {}
const bad = (reason: string): never => {
  throw new Bad(reason)
}

const str = (o: Obj, key: string, where: string): string =>
  typeof o[key] === "string" ? (o[key] as string) : bad(`${where}.${key} must be a string`)
const bool = (o: Obj, key: string, where: string): boolean =>
  typeof o[key] === "boolean" ? (o[key] as boolean) : bad(`${where}.${key} must be true or false`)
const obj = (o: Obj, key: string, where: string): Obj =>
  isObj(o[key]) ? (o[key] as Obj) : bad(`${where}.${key} must be an object`)
const int = (o: Obj, key: string, where: string, min = 0): number =>
  isInt(o[key]) && (o[key] as number) >= min
    ? (o[key] as number)
    : bad(`${where}.${key} must be an integer >= ${min}, got ${JSON.stringify(o[key])}`)

const reproducibility = (v: unknown): Reproducibility => {
  if (v === "exact") return "exact"
  const positive = (x: unknown) => isFiniteNumber(x) && x >= 0
  if (
    isObj(v) &&
    positive(v.relTolerance) &&
    (v.durationRelTolerance === undefined || positive(v.durationRelTolerance))
  )
    return {
      relTolerance: v.relTolerance as number,
      ...(v.durationRelTolerance !== undefined
        ? { durationRelTolerance: v.durationRelTolerance as number }
        : {}),
    }
  return bad(
    `ready.reproducible must be "exact" or {"relTolerance": x, "durationRelTolerance"?: y} with numbers >= 0, got ${JSON.stringify(v)}`,
  )
}

const decodeReady = (o: Obj, id: number): Ready => {
  const w = "ready"
  if (!isInt(o.protocol)) bad(`ready.protocol must be an integer, got ${JSON.stringify(o.protocol)}`)
  const trainer = obj(o, "trainer", w)
  const caps = obj(o, "capabilities", w)
  const strings = (key: "info" | "environment") => {
    const out: Record<string, string> = {}
    if (o[key] === undefined) return out
    if (!isObj(o[key])) bad(`ready.${key} must be an object of strings`)
    for (const [k, v] of Object.entries(o[key] as Obj))
      out[k] = typeof v === "string" ? v : bad(`ready.${key}.${k} must be a string, got ${JSON.stringify(v)}`)
    return out
  }
  const info = strings("info")
  const environment = strings("environment")
  return {
    type: "ready",
    id,
    protocol: o.protocol as number,
    trainer: {
      name: str(trainer, "name", "ready.trainer"),
      version: str(trainer, "version", "ready.trainer"),
    },
    device: str(o, "device", w),
    framework: str(o, "framework", w),
    stateless: bool(o, "stateless", w),
    capabilities: {
      evaluate: bool(caps, "evaluate", "ready.capabilities"),
      checkpoint: bool(caps, "checkpoint", "ready.capabilities"),
    },
    info,
    ...(o.reproducible !== undefined ? { reproducible: reproducibility(o.reproducible) } : {}),
    ...(Object.keys(environment).length > 0 ? { environment } : {}),
  }
}

const decodeOutcome = (o: Obj, id: number): Outcome => {
  const w = "outcome"
  const lossesIn = obj(o, "losses", w)
  const losses: Record<string, number> = {}
  for (const [k, v] of Object.entries(lossesIn))
    losses[k] = isFiniteNumber(v)
      ? v
      : bad(`outcome.losses.${k} must be a finite number, got ${JSON.stringify(v)}`)
  if (!("total" in losses)) bad('outcome.losses must hold "total"')
  if (!isFiniteNumber(o.durationMs) || o.durationMs < 0)
    bad(`outcome.durationMs must be a finite number >= 0, got ${JSON.stringify(o.durationMs)}`)
  const memory: { -readonly [K in keyof MemorySample]: number } = {}
  if (o.memory !== undefined) {
    if (!isObj(o.memory)) bad("outcome.memory must be an object")
    for (const [k, v] of Object.entries(o.memory as Obj)) {
      if (!(MEMORY_KEYS as ReadonlyArray<string>).includes(k))
        bad(`outcome.memory.${k} is not one of ${MEMORY_KEYS.join(", ")}`)
      if (!isFiniteNumber(v) || v < 0)
        bad(`outcome.memory.${k} must be a number of bytes >= 0, got ${JSON.stringify(v)}`)
      memory[k as keyof MemorySample] = v as number
    }
  }
  return {
    type: "outcome",
    id,
    step: int(o, "step", w),
    losses,
    durationMs: o.durationMs as number,
    samples: int(o, "samples", w),
    memory,
  }
}

const decodeEvaluation = (o: Obj, id: number): Evaluation => {
  const values = obj(o, "values", "evaluation")
  const num = (m: "visual" | "text") =>
    isFiniteNumber(values[m]) ? (values[m] as number) : bad(`evaluation.values.${m} must be a finite number`)
  if (o.chance !== undefined && !isFiniteNumber(o.chance)) bad("evaluation.chance must be a finite number")
  return {
    type: "evaluation",
    id,
    metric: str(o, "metric", "evaluation"),
    values: { visual: num("visual"), text: num("text") },
    chance: o.chance as number | undefined,
  }
}

const BARE = /([:,[]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g

/**
 * Python's json.dumps writes NaN and Infinity as bare words, which are not JSON. An outcome whose
 * only fault is such a loss is read for what it means, a nan-loss failure; the protocol asks a
 * trainer to send that failure itself.
 */
const bareNonFinite = (line: string): Failure | undefined => {
  let v: unknown
  try {
    v = JSON.parse(line.replace(BARE, '$1"\\u0000$2"'))
  } catch {
    return undefined
  }
  if (!isObj(v) || v.type !== "outcome" || !isInt(v.id) || !isObj(v.losses)) return undefined
  const bad = Object.entries(v.losses).filter(([, x]) => typeof x === "string" && x.startsWith("\u0000"))
  if (bad.length === 0) return undefined
  const shown = bad.map(([k, x]) => `${k}=${(x as string).slice(1)}`).join(", ")
  return {
    type: "failure",
    id: v.id,
    kind: "nan-loss",
    message: `non-finite loss at step ${String(v.step)}: ${shown} (written as bare ${bad.length > 1 ? "words" : "word"} on the wire, which is not JSON; a trainer should send a nan-loss failure)`,
  }
}

/** Reads one line of the trainer's stdout as a reply, or says why it is not one. */
export const decodeReply = (line: string): Reply | ProtocolViolation => {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return bareNonFinite(line) ?? new ProtocolViolation(`not a protocol reply (not JSON): ${quote(line)}`)
  }
  if (!isObj(v)) return new ProtocolViolation(`not a protocol reply (not a JSON object): ${quote(line)}`)
  const type = v.type
  try {
    if (type === "failure") {
      if (v.id !== null && !isInt(v.id))
        bad(`failure.id must be an integer or null, got ${JSON.stringify(v.id)}`)
      return {
        type: "failure",
        id: v.id as number | null,
        kind: str(v, "kind", "failure"),
        message: str(v, "message", "failure"),
      }
    }
    if (!isInt(v.id)) bad(`${String(type)}.id must be an integer, got ${JSON.stringify(v.id)}`)
    const id = v.id as number
    switch (type) {
      case "ready":
        return decodeReady(v, id)
      case "outcome":
        return decodeOutcome(v, id)
      case "evaluation":
        return decodeEvaluation(v, id)
      case "checkpointed":
      case "restored":
        return { type, id, path: str(v, "path", type) }
      case "closed":
        return { type, id }
      default:
        return new ProtocolViolation(
          `not a protocol reply (unknown type ${JSON.stringify(type)}): ${quote(line)}`,
        )
    }
  } catch (e) {
    if (e instanceof Bad) return new ProtocolViolation(`invalid ${String(type)} reply: ${e.message}`)
    throw e
  }
}

/** The request line for a step: the plan as core/schedule plans it. */
export const stepRequest = (id: number, plan: StepPlan): string =>
  JSON.stringify({
    type: "step",
    id,
    plan: planFields(plan),
  })
