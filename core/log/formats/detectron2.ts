/**
 * detectron2's `metrics.json` (JSONWriter) as an observed run: one JSON object a line, keys sorted.
 *
 * What the rows mean (detectron2 utils/events.py, engine/hooks.py, engine/defaults.py):
 * - `iteration` is 0-based (the trainer's iter); rows come every 20 iterations (PeriodicWriter
 *   period) and after the last one, so iterations 19, 39, ...
 * - scalars with a smoothing hint (losses, `time`, `data_time`) are medians of their last 20
 *   values (JSONWriter window_size=20); `lr` and `eta_seconds` are the latest value.
 * - `lr` is the lr of the param group with the most parameters (the LRScheduler hook's
 *   _best_param_group_id), recorded after the iteration's step, before scheduler.step(): the lr
 *   that iteration used.
 * - evaluation results are flattened into rows at the evaluation's iteration (`bbox/AP`,
 *   `segm/AP50`, ...), sometimes in the same row as the training scalars.
 * - the writer opens the file in append mode, so a second run (or a resume) in the same output
 *   folder appends: the iteration goes back. The file is then split at those points into
 *   segments, one run each; importing or verifying needs `--segment N` to say which.
 */
import { Either } from "effect"
import type { RunEvent } from "../events.ts"
import {
  isFiniteNumber,
  isObject,
  type JsonObject,
  type Line,
  LogFileError,
  modeOf,
  parseJsonLine,
} from "./lines.ts"
import { type NonFiniteTally, nonFiniteTally, withNonFinite } from "./non-finite.ts"
import type { Analyzer, Converter, Described, ObservedReader, ReadOptions } from "./observed-reader.ts"

/** detectron2's evaluator result prefixes (flatten_results_dict of COCOEvaluator, SemSegEvaluator, ...). */
const EVAL_PREFIXES = new Set(["bbox", "segm", "keypoints", "sem_seg", "panoptic_seg", "box_proposals"])
const TRAIN_HINTS = ["lr", "time", "data_time", "eta_seconds", "total_loss"]

/** JSONWriter's window_size for smoothed scalars. */
export const DETECTRON2_MEDIAN_WINDOW = 20

interface Row {
  readonly rec: JsonObject
  readonly iteration: number
  readonly nonFinite: ReadonlyArray<string>
}

const parseRow = (l: Line, file: string): Row | LogFileError | undefined => {
  if (l.text.trim() === "") return undefined
  const p = parseJsonLine(l.text, file, l.line)
  if (p instanceof LogFileError) return p
  if (!isObject(p.value))
    return new LogFileError({
      file,
      line: l.line,
      reason: "expected one JSON object per line (a detectron2 metrics row)",
    })
  const it = p.value.iteration
  if (!Number.isInteger(it) || (it as number) < 0)
    return new LogFileError({
      file,
      line: l.line,
      field: "iteration",
      reason: `expected the 0-based iteration (an integer >= 0), got ${JSON.stringify(it)}`,
    })
  return { rec: p.value, iteration: it as number, nonFinite: p.nonFinite }
}

/** Whether a row is only evaluation results (no training scalars). */
const isEvalOnly = (rec: JsonObject): boolean =>
  !Object.keys(rec).some((k) => TRAIN_HINTS.includes(k) || k.startsWith("loss"))

const isEvalKey = (k: string, rec: JsonObject): boolean =>
  k !== "iteration" && (EVAL_PREFIXES.has(k.split("/")[0] ?? "") || isEvalOnly(rec))

export interface Segment {
  readonly firstLine: number
  lastLine: number
  readonly firstIteration: number
  lastIteration: number
  rows: number
  readonly increments: Map<number, number>
  readonly trainKeys: Set<string>
  readonly metrics: Set<string>
  evalRows: number
  readonly nonFinite: NonFiniteTally
}

export interface Detectron2Analysis {
  readonly lines: { total: number; read: number; skipped: number }
  readonly segments: ReadonlyArray<Segment>
}

const analyzer = (file: string): Analyzer<Detectron2Analysis> => {
  const lines = { total: 0, read: 0, skipped: 0 }
  const segments: Segment[] = []
  let cur: Segment | undefined
  let lastTrain: number | undefined
  return {
    push: (l) => {
      lines.total++
      const row = parseRow(l, file)
      if (row === undefined) {
        lines.skipped++
        return undefined
      }
      if (row instanceof LogFileError) return row
      lines.read++
      if (
        cur === undefined ||
        row.iteration < cur.lastIteration ||
        (row.iteration === cur.lastIteration && !isEvalOnly(row.rec) && lastTrain === row.iteration)
      ) {
        cur = {
          firstLine: l.line,
          lastLine: l.line,
          firstIteration: row.iteration,
          lastIteration: row.iteration,
          rows: 0,
          increments: new Map(),
          trainKeys: new Set(),
          metrics: new Set(),
          evalRows: 0,
          nonFinite: nonFiniteTally(),
        }
        segments.push(cur)
        lastTrain = undefined
      }
      cur.rows++
      cur.lastLine = l.line
      for (const k of row.nonFinite) cur.nonFinite.add(k, { line: l.line, iteration: row.iteration })
      let train = false
      for (const [k, v] of Object.entries(row.rec)) {
        if (k === "iteration" || !(isFiniteNumber(v) || row.nonFinite.includes(k))) continue
        if (isEvalKey(k, row.rec)) cur.metrics.add(k)
        else {
          cur.trainKeys.add(k)
          train = true
        }
      }
      if (!train) cur.evalRows++
      if (train) {
        if (lastTrain !== undefined && row.iteration > lastTrain) {
          const d = row.iteration - lastTrain
          cur.increments.set(d, (cur.increments.get(d) ?? 0) + 1)
        }
        lastTrain = row.iteration
      }
      cur.lastIteration = Math.max(cur.lastIteration, row.iteration)
      return undefined
    },
    finish: () => Either.right({ lines, segments }),
  }
}

const pick = (
  a: Detectron2Analysis,
  file: string,
  options: ReadOptions,
): Either.Either<[Segment, number], string> => {
  const n = a.segments.length
  if (n === 0) return Either.left(`${file}: no detectron2 metrics rows (${a.lines.total} lines, none a row)`)
  if (options.segment === undefined) {
    if (n === 1) return Either.right([a.segments[0]!, 1])
    const parts = a.segments
      .map(
        (s, i) =>
          `${i + 1}: lines ${s.firstLine}-${s.lastLine}, iterations ${s.firstIteration}..${s.lastIteration}`,
      )
      .join("; ")
    const s2 = a.segments[1]!
    const prev = a.segments[0]!
    return Either.left(
      `${file}: holds ${n} runs appended (detectron2 appends to metrics.json): the iteration goes back at line ${s2.firstLine} (${s2.firstIteration} after ${prev.lastIteration})${s2.firstIteration <= prev.firstIteration ? ", a new run from the start" : ", a resume from a checkpoint?"}; ${parts}. Pick one with --segment 1..${n}`,
    )
  }
  if (!Number.isInteger(options.segment) || options.segment < 1 || options.segment > n)
    return Either.left(
      `--segment: ${file} holds ${n} run${n === 1 ? "" : "s"}; expected 1..${n}, got ${options.segment}`,
    )
  return Either.right([a.segments[options.segment - 1]!, options.segment])
}

const describe = (
  a: Detectron2Analysis,
  file: string,
  options: ReadOptions,
): Either.Either<Described, string> =>
  Either.map(pick(a, file, options), ([seg, index]) => {
    const period = modeOf(seg.increments)
    const fields: Record<string, string> = {}
    for (const k of seg.trainKeys) {
      if (k === "lr")
        fields.lr =
          "lr of the param group with the most parameters (LRScheduler hook's _best_param_group_id) at the row's iteration, recorded after its step"
      else if (k === "eta_seconds") fields.eta_seconds = "estimated seconds to the end (latest value)"
      else if (k === "time")
        fields.time = `seconds per iteration, median of the last ${DETECTRON2_MEDIAN_WINDOW} iterations`
      else if (k === "data_time")
        fields.data_time = `seconds per iteration waiting for data, median of the last ${DETECTRON2_MEDIAN_WINDOW} iterations`
      else fields[k] = `median of the last ${DETECTRON2_MEDIAN_WINDOW} values (JSONWriter smoothing)`
    }
    for (const m of seg.metrics) fields[m] = "evaluation result at the row's iteration"
    const rows = seg.rows - seg.evalRows
    const descriptor: Described["descriptor"] = {
      format: "detectron2",
      source: "detectron2 JSONWriter metrics.json",
      lines: a.lines,
      iterations: "`iteration` is 0-based (the trainer's iter), stored as it is",
      window: {
        kind: "median",
        iterations: DETECTRON2_MEDIAN_WINDOW,
        description: `losses and times are medians of the last ${DETECTRON2_MEDIAN_WINDOW} iterations (JSONWriter window_size); rows every ${period ?? "?"} iterations (PeriodicWriter period, inferred from the increments); lr is the latest value`,
      },
      fields,
      carries: [
        `${rows} train rows (iterations ${seg.firstIteration}..${seg.lastIteration})`,
        ...(seg.metrics.size > 0 ? [`evaluation results: ${[...seg.metrics].join(", ")}`] : []),
        ...[...seg.trainKeys].map((k) => `train field ${k}`),
      ],
      lacks: [
        "per-iteration modality (detectron2 does not log it)",
        "the lr of every param group but the one with the most parameters",
        "per-iteration values (rows are medians of 20)",
        "optimizer update steps and gradient accumulation",
        "wall-clock timestamps",
        "seed",
      ],
      settings: period === undefined ? {} : { logging_period: period },
      ...(a.segments.length > 1
        ? { segment: { index, of: a.segments.length, firstLine: seg.firstLine, lastLine: seg.lastLine } }
        : {}),
      ...withNonFinite(seg.nonFinite.result()),
    }
    return {
      descriptor,
      name: "detectron2",
      ...(a.segments.length > 1 ? { suffix: `run${index}` } : {}),
      startedAt: 0,
      steps: seg.lastIteration + 1,
      seed: 0,
    }
  })

const converter = (a: Detectron2Analysis, file: string, options: ReadOptions): Converter => {
  const chosen = pick(a, file, options)
  const seg = Either.isRight(chosen) ? chosen.right[0] : undefined
  const period = seg ? (modeOf(seg.increments) ?? seg.lastIteration + 1) : 1
  let prev: number | undefined
  return {
    push: (l) => {
      if (!seg || l.line < seg.firstLine || l.line > seg.lastLine) return []
      const row = parseRow(l, file)
      if (row === undefined || row instanceof LogFileError) return []
      const out: RunEvent[] = []
      const values: Record<string, number> = {}
      const nonFinite: string[] = []
      for (const [k, v] of Object.entries(row.rec)) {
        if (k === "iteration") continue
        if (isEvalKey(k, row.rec)) {
          if (isFiniteNumber(v))
            out.push({
              _tag: "ObservedEval",
              metric: k,
              value: v,
              at: { iteration: row.iteration },
              line: l.line,
            })
        } else if (isFiniteNumber(v)) values[k] = v
        else if (row.nonFinite.includes(k)) nonFinite.push(k)
      }
      if (Object.keys(values).length > 0 || nonFinite.length > 0) {
        const last = row.iteration
        const first = Math.max(
          0,
          prev !== undefined && prev < last ? Math.max(prev + 1, last - period + 1) : last - period + 1,
        )
        prev = last
        out.unshift({
          _tag: "ObservedWindow",
          first,
          last,
          values,
          ...(nonFinite.length > 0 ? { nonFinite } : {}),
          line: l.line,
        })
      }
      return out
    },
    end: () => [],
  }
}

export const detectron2Reader: ObservedReader<Detectron2Analysis> = {
  format: "detectron2",
  analyzer,
  describe,
  converter,
}
