/**
 * mmengine's logs as observed runs: `vis_data/scalars.json` (LocalVisBackend, mmengine / mmdet 3.x)
 * and the older `<timestamp>.log.json` (mmcv's TextLoggerHook, mmdet 2.x). One JSON object a line.
 *
 * What the rows mean (mmengine LoggerHook, LogProcessor, RuntimeInfoHook; mmcv TextLoggerHook):
 * - train rows are written every `interval` iterations (LoggerHook, 50 in mmdet's default_runtime)
 *   and at the end of each epoch; `step` (and `iter`) is runner.iter + 1, so 1-based: stored as
 *   iteration `step - 1`. The older log.json counts `iter` within the epoch in epoch-based runs.
 * - scalars.json: losses, `time`, `data_time`, `grad_norm` are means over the last `window_size`
 *   iterations (LogProcessor, default 10; mmdet's default_runtime sets 50). The file does not
 *   record it, and it is not the logging interval (a run may log every iteration with a window of
 *   50): it comes from `--window N`, or from the config mmengine dumped next to the file
 *   (`vis_data/config.py`, the work dir's `<name>.py`, the `<timestamp>.log` text log) when that
 *   states `log_processor`; otherwise the descriptor says it is unknown. The logging interval
 *   (from the step increments) is a setting of its own, `logging_interval`.
 * - log.json (mmcv): means over the logging interval (TextLoggerHook averages log_buffer over
 *   `interval`), inferred from the increments.
 * - `lr` is the optimizer's first param group's lr at the row's last iteration (set before the
 *   iteration); `base_lr` the optimizer's configured lr.
 * - `memory` is torch.cuda.max_memory_allocated since the previous row, in MiB (bytes // 2**20).
 * - validation rows reuse `step` for the epoch (runner.epoch) in epoch-based runs, so `step` is
 *   not monotonic over the file; they are told from train rows by their keys (no lr, no loss;
 *   metrics such as coco/bbox_mAP). The older format marks them `"mode": "val"`.
 * Neither records the modality of an iteration: only a trainer that logs a per-iteration
 * `modality` field (interval 1) can be checked against a schedule's pattern.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { Either } from "effect"
import type { RunEvent } from "../events.ts"
import type { ObservedAt } from "../observed-events.ts"
import {
  isFiniteNumber,
  isObject,
  type JsonObject,
  type Line,
  LogFileError,
  modeOf,
  numericFields,
  parseJsonLine,
} from "./lines.ts"
import { type NonFiniteTally, nonFiniteTally, withNonFinite } from "./non-finite.ts"
import type { Analyzer, Converter, Described, ObservedReader, ReadOptions } from "./observed-reader.ts"

type Variant = "scalars" | "legacy"

const META_KEYS = ["env_info", "config", "exp_name", "mmdet_version", "CLASSES", "hook_msgs"]
const isMeta = (r: JsonObject): boolean => !("mode" in r) && !("step" in r) && META_KEYS.some((k) => k in r)

const isTrainScalars = (r: JsonObject): boolean =>
  "lr" in r || Object.keys(r).some((k) => k.startsWith("loss"))

/** Keys that are counters or timings, not metrics, in a validation row. */
const NOT_METRICS = new Set(["step", "epoch", "iter", "mode", "time", "data_time", "memory", "lr", "base_lr"])

const MODALITIES = new Set(["visual", "text"])

interface Row {
  readonly kind: "train" | "val" | "meta"
  readonly rec: JsonObject
  readonly nonFinite: ReadonlyArray<string>
  /** scalars: `step`; legacy: `iter` (inner when counted per epoch). */
  readonly count: number
  readonly epoch: number | undefined
}

const parseRow = (l: Line, file: string, variant: Variant | undefined): Row | LogFileError | undefined => {
  if (l.text.trim() === "") return undefined
  const p = parseJsonLine(l.text, file, l.line)
  if (p instanceof LogFileError) return p
  const rec = p.value
  if (!isObject(rec))
    return new LogFileError({
      file,
      line: l.line,
      reason: "expected one JSON object per line (an mmengine log row)",
    })
  if (isMeta(rec)) return { kind: "meta", rec, nonFinite: [], count: 0, epoch: undefined }
  const legacy = "mode" in rec
  if (variant !== undefined && legacy !== (variant === "legacy"))
    return new LogFileError({
      file,
      line: l.line,
      reason: legacy
        ? 'a row with "mode" (mmcv log.json) in an mmengine scalars.json'
        : 'a row without "mode" in an mmcv log.json',
    })
  const epoch = isFiniteNumber(rec.epoch) ? rec.epoch : undefined
  if (legacy) {
    if (rec.mode !== "train" && rec.mode !== "val")
      return new LogFileError({
        file,
        line: l.line,
        field: "mode",
        reason: `expected "train" or "val", got ${JSON.stringify(rec.mode)}`,
      })
    if (!Number.isInteger(rec.iter) || (rec.iter as number) < 0)
      return new LogFileError({
        file,
        line: l.line,
        field: "iter",
        reason: `expected the iteration count (an integer >= 0), got ${JSON.stringify(rec.iter)}`,
      })
    return { kind: rec.mode, rec, nonFinite: p.nonFinite, count: rec.iter as number, epoch }
  }
  const train = isTrainScalars(rec)
  if (!Number.isInteger(rec.step) || (rec.step as number) < (train ? 1 : 0))
    return new LogFileError({
      file,
      line: l.line,
      field: "step",
      reason: train
        ? `expected runner.iter + 1, an integer >= 1, got ${JSON.stringify(rec.step)}`
        : `expected the epoch (or iteration) of the validation, an integer >= 0, got ${JSON.stringify(rec.step)}`,
    })
  return { kind: train ? "train" : "val", rec, nonFinite: p.nonFinite, count: rec.step as number, epoch }
}

export interface MmengineAnalysis {
  readonly variant: Variant
  readonly lines: { total: number; read: number; skipped: number }
  readonly train: number
  readonly val: number
  readonly byEpoch: boolean
  /** Old format: `iter` restarts at each epoch. */
  readonly innerIter: boolean
  /** Old format: iterations per epoch (from a val row's iter, else the largest inner iter seen). */
  readonly itersPerEpoch: number | undefined
  readonly itersPerEpochKnown: boolean
  readonly interval: number | undefined
  readonly firstIteration: number | undefined
  readonly lastIteration: number | undefined
  readonly trainKeys: ReadonlySet<string>
  readonly metrics: ReadonlySet<string>
  readonly modalityRows: number
  readonly settings: Record<string, string | number | boolean>
  readonly expName: string | undefined
  readonly nonFinite: NonFiniteTally
}

/** The 0-based last iteration of a train row. */
const lastIterationOf = (
  row: Row,
  variant: Variant,
  innerIter: boolean,
  itersPerEpoch: number | undefined,
): number => {
  if (variant === "scalars" || !innerIter || row.epoch === undefined) return row.count - 1
  return (row.epoch - 1) * (itersPerEpoch ?? 0) + row.count - 1
}

const analyzer = (file: string): Analyzer<MmengineAnalysis> => {
  let variant: Variant | undefined
  const lines = { total: 0, read: 0, skipped: 0 }
  let train = 0
  let val = 0
  let byEpoch = false
  const trainKeys = new Set<string>()
  const metrics = new Set<string>()
  let modalityRows = 0
  const settings: Record<string, string | number | boolean> = {}
  let expName: string | undefined
  const nonFinite = nonFiniteTally()
  // Old format: per-epoch inner iteration resets, and the epoch length.
  let prevEpoch: number | undefined
  let prevCount: number | undefined
  let resets = 0
  let valIter: number | undefined
  let maxInner = 0
  const counts: Array<{ count: number; epoch: number | undefined }> = []
  return {
    push: (l) => {
      lines.total++
      const row = parseRow(l, file, variant)
      if (row === undefined) {
        lines.skipped++
        return undefined
      }
      if (row instanceof LogFileError) return row
      lines.read++
      if (row.kind === "meta") {
        const seed = row.rec.seed
        if (isFiniteNumber(seed)) settings.seed = seed
        if (typeof row.rec.exp_name === "string") expName = row.rec.exp_name
        if (typeof row.rec.mmdet_version === "string") settings.mmdet_version = row.rec.mmdet_version
        return undefined
      }
      variant ??= "mode" in row.rec ? "legacy" : "scalars"
      for (const k of row.nonFinite)
        nonFinite.add(
          k,
          row.kind === "train" && variant === "scalars"
            ? { line: l.line, iteration: row.count - 1 }
            : { line: l.line },
        )
      if (row.kind === "val") {
        val++
        for (const [k, v] of Object.entries(row.rec))
          if (!NOT_METRICS.has(k) && isFiniteNumber(v)) metrics.add(k)
        if (variant === "legacy") valIter ??= row.count
        return undefined
      }
      train++
      if (row.epoch !== undefined) byEpoch = true
      for (const [k, v] of Object.entries(row.rec)) if (isFiniteNumber(v) || isObject(v)) trainKeys.add(k)
      for (const k of row.nonFinite) trainKeys.add(k)
      if (typeof row.rec.modality === "string" && MODALITIES.has(row.rec.modality)) modalityRows++
      if (
        prevEpoch !== undefined &&
        row.epoch !== undefined &&
        row.epoch > prevEpoch &&
        prevCount !== undefined
      )
        if (row.count <= prevCount) resets++
      prevEpoch = row.epoch
      prevCount = row.count
      maxInner = Math.max(maxInner, row.count)
      counts.push({ count: row.count, epoch: row.epoch })
      return undefined
    },
    finish: () => {
      const v = variant ?? "scalars"
      const innerIter = v === "legacy" && resets > 0
      const itersPerEpoch = innerIter ? (valIter ?? maxInner) : undefined
      const increments = new Map<number, number>()
      let prev: number | undefined
      let first: number | undefined
      let last: number | undefined
      for (const c of counts) {
        const it = lastIterationOf(
          { kind: "train", rec: {}, nonFinite: [], ...c },
          v,
          innerIter,
          itersPerEpoch,
        )
        if (prev !== undefined && it > prev) increments.set(it - prev, (increments.get(it - prev) ?? 0) + 1)
        prev = it
        first = first === undefined ? it : Math.min(first, it)
        last = last === undefined ? it : Math.max(last, it)
      }
      const interval =
        modeOf(increments) ?? (counts.length === 1 && first !== undefined ? first + 1 : undefined)
      return Either.right({
        variant: v,
        lines,
        train,
        val,
        byEpoch,
        innerIter,
        itersPerEpoch,
        itersPerEpochKnown: valIter !== undefined,
        interval,
        firstIteration: first,
        lastIteration: last,
        trainKeys,
        metrics,
        modalityRows,
        settings,
        expName,
        nonFinite,
      })
    },
  }
}

/** mmengine LogProcessor's default window_size. */
export const MMENGINE_DEFAULT_WINDOW = 10

/** Bytes of a companion file read (a dumped config is at the top of the text log). */
const COMPANION_BYTES = 1 << 20

const readHead = (file: string): string | undefined => {
  try {
    if (!statSync(file).isFile()) return undefined
    const fd = openSync(file, "r")
    try {
      const buf = Buffer.alloc(Math.min(COMPANION_BYTES, statSync(file).size))
      const n = readSync(fd, buf, 0, buf.length, 0)
      return buf.subarray(0, n).toString("utf8")
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
}

export interface WindowSource {
  readonly iterations: number
  /** Where it came from, in words. */
  readonly from: string
}

/**
 * LogProcessor's window_size as a config states it: `log_processor = dict(..., window_size=N)`,
 * or mmengine's default when a dumped config's `log_processor` sets none.
 */
export const windowOfConfig = (text: string): { iterations: number; stated: boolean } | undefined => {
  const m = /(?:^|\n)\s*log_processor\s*=\s*dict\(([^)]*)\)/.exec(text)
  if (m === null) return undefined
  const w = /window_size\s*=\s*(\d+)/.exec(m[1] ?? "")
  if (w === null) return { iterations: MMENGINE_DEFAULT_WINDOW, stated: false }
  const n = Number(w[1])
  return Number.isSafeInteger(n) && n >= 1 ? { iterations: n, stated: true } : undefined
}

/**
 * The files mmengine writes next to `vis_data/scalars.json` that may state the window: the config
 * LocalVisBackend saves (`vis_data/config.py`), the timestamp folder's text log
 * (`<timestamp>/<timestamp>.log`, which prints the config), the config the runner dumps into
 * the work dir (`<work_dir>/<name>.py`).
 */
export const companionFiles = (file: string): string[] => {
  const dir = dirname(file)
  const out = [join(dir, "config.py")]
  if (basename(dir) === "vis_data") {
    const stamp = dirname(dir)
    const work = dirname(stamp)
    out.push(join(stamp, `${basename(stamp)}.log`), join(work, `${basename(work)}.py`))
  }
  return out
}

/** The window a companion file states, and which file. */
export const companionWindow = (file: string): WindowSource | undefined => {
  for (const c of companionFiles(file)) {
    const text = readHead(c)
    if (text === undefined) continue
    const w = windowOfConfig(text)
    if (w !== undefined)
      return {
        iterations: w.iterations,
        from: w.stated
          ? `log_processor's window_size in ${c}`
          : `${c}: its log_processor sets no window_size, so mmengine's default`,
      }
  }
  return undefined
}

const every = (n: number): string => (n === 1 ? "every iteration" : `every ${n} iterations`)

const UNKNOWN_WINDOW = "mmengine's logging window (window_size, default 10; not recorded in scalars.json)"

const describe = (
  a: MmengineAnalysis,
  file: string,
  options: ReadOptions,
): Either.Either<Described, string> => {
  if (a.train + a.val === 0)
    return Either.left(`${file}: no mmengine log rows (${a.lines.total} lines, none a row)`)
  const legacy = a.variant === "legacy"
  if (legacy && options.window !== undefined)
    return Either.left(
      `--window: ${file} is an mmcv log.json, whose rows are means over the logging interval (every ${a.interval ?? "?"} iterations here); --window is for mmengine's scalars.json`,
    )
  // scalars.json: the window as the user or a companion config states it, never the interval.
  const known: WindowSource | undefined = legacy
    ? undefined
    : options.window !== undefined
      ? { iterations: options.window, from: "--window" }
      : companionWindow(file)
  const n = legacy ? a.interval : known?.iterations
  const win =
    n === undefined
      ? legacy
        ? "the logging window"
        : UNKNOWN_WINDOW
      : `the last ${n} iterations${known ? ` (window_size ${n}, ${known.from})` : ""}`
  const fields: Record<string, string> = {}
  for (const k of a.trainKeys) {
    if (k === "step" || k === "iter" || k === "epoch") continue
    if (k === "lr")
      fields.lr = legacy
        ? "lr of the optimizer's first param group at the row's last iteration (mmcv runner.current_lr()[0])"
        : "lr of the optimizer's first param group at the row's last iteration (RuntimeInfoHook, set before the iteration; LogProcessor logs the current value)"
    else if (k === "base_lr") fields.base_lr = "the optimizer's configured lr (not scheduled)"
    else if (k === "memory")
      fields.memory =
        "torch.cuda.max_memory_allocated since the previous row, MiB (bytes // 2**20; the peak is reset after each row)"
    else if (k === "time") fields.time = `seconds per iteration, mean over ${win}`
    else if (k === "data_time") fields.data_time = `seconds per iteration waiting for data, mean over ${win}`
    else if (/loss|grad_norm/.test(k)) fields[k] = `mean over ${win}`
    else if (k === "modality")
      fields.modality = "the iteration's modality, as the trainer logged it (rows of one iteration)"
    else
      fields[k] = legacy
        ? `mean over ${win} (mmcv log_buffer)`
        : `the latest value at the row (LogProcessor 'current')`
  }
  for (const m of a.metrics)
    fields[m] = `validation metric${a.byEpoch ? ", at the epoch in the row's step" : ""}`
  const carries = [
    `${a.train} train rows (iterations ${a.firstIteration ?? "-"}..${a.lastIteration ?? "-"}, 0-based)`,
    ...(a.val > 0 ? [`${a.val} validation rows (${[...a.metrics].join(", ") || "no metrics"})`] : []),
    ...[...a.trainKeys].filter((k) => !["step", "iter", "epoch"].includes(k)).map((k) => `train field ${k}`),
  ]
  const lacks = [
    ...(a.modalityRows === 0
      ? [
          "per-iteration modality (mmengine does not log it; PET-DINO's losses have the same keys for both prompt types)",
        ]
      : []),
    "the lr of every param group but the first",
    "per-iteration values (rows are window means)",
    "optimizer update steps and gradient accumulation",
    "wall-clock timestamps",
  ]
  if (a.variant === "legacy" && a.innerIter && !a.itersPerEpochKnown)
    lacks.push(
      "the epoch length (no validation row): iterations after epoch 1 are placed with the longest epoch seen",
    )
  const settings = { ...a.settings }
  if (a.itersPerEpoch !== undefined) settings.iterations_per_epoch = a.itersPerEpoch
  if (a.interval !== undefined) settings.logging_interval = a.interval
  return Either.right({
    descriptor: {
      format: legacy ? "mmengine-log-json" : "mmengine",
      source: legacy ? "mmcv TextLoggerHook *.log.json" : "mmengine LoggerHook vis_data/scalars.json",
      lines: a.lines,
      iterations: legacy
        ? a.innerIter
          ? "`iter` counts iterations within the epoch from 1 (mmcv inner_iter + 1); stored 0-based as (epoch - 1) x iterations per epoch + iter - 1"
          : "`iter` is runner.iter + 1 (1-based); stored 0-based as iter - 1"
        : "`step` (and `iter`) is runner.iter + 1 (1-based); stored 0-based as step - 1; validation rows' step is the epoch",
      window: {
        kind: "mean",
        ...(n === undefined ? {} : { iterations: n }),
        description: legacy
          ? n === undefined
            ? "losses and times are means over the logging window (one row: its length is unknown)"
            : `losses and times are means over the last ${n} iterations: mmcv's TextLoggerHook averages over its logging interval, inferred from the step increments`
          : known === undefined
            ? `losses and times are means over ${UNKNOWN_WINDOW}; give --window N when you know it${a.interval === undefined ? "" : ` (rows come ${every(a.interval)}: the logging interval, not the window)`}`
            : `losses and times are means over the last ${known.iterations} iterations (window_size ${known.iterations}, ${known.from})${a.interval === undefined ? "" : `; rows come ${every(a.interval)}`}`,
      },
      fields,
      carries,
      lacks,
      settings,
      ...(a.modalityRows > 0 ? { modalityField: "modality" } : {}),
      ...withNonFinite(a.nonFinite.result()),
    },
    name: a.expName ?? "mmengine",
    startedAt: 0,
    steps: a.lastIteration === undefined ? 0 : a.lastIteration + 1,
    seed: typeof a.settings.seed === "number" && Number.isSafeInteger(a.settings.seed) ? a.settings.seed : 0,
  })
}

const converter = (a: MmengineAnalysis, file: string): Converter => {
  let prevLast: number | undefined
  return {
    push: (l) => {
      const row = parseRow(l, file, a.variant)
      if (row === undefined || row instanceof LogFileError || row.kind === "meta") return []
      if (row.kind === "val") {
        const at: { -readonly [K in keyof ObservedAt]: ObservedAt[K] } = {}
        if (a.variant === "legacy") {
          if (row.epoch !== undefined) at.epoch = row.epoch
          if (row.epoch !== undefined && a.itersPerEpoch !== undefined && a.innerIter)
            at.iteration = row.epoch * a.itersPerEpoch - 1
        } else if (a.byEpoch) at.epoch = row.count
        else at.iteration = Math.max(0, row.count - 1)
        const out: RunEvent[] = []
        for (const [k, v] of Object.entries(row.rec))
          if (!NOT_METRICS.has(k) && isFiniteNumber(v))
            out.push({ _tag: "ObservedEval", metric: k, value: v, at, line: l.line })
        return out
      }
      const last = lastIterationOf(row, a.variant, a.innerIter, a.itersPerEpoch)
      const n = a.interval ?? last + 1
      const first = Math.max(
        0,
        prevLast !== undefined && prevLast < last ? Math.max(prevLast + 1, last - n + 1) : last - n + 1,
      )
      prevLast = last
      const values = numericFields(row.rec, new Set(["step", "iter", "epoch"]))
      // Old format with several optimizers: lr is an object of first-group lrs.
      if (isObject(row.rec.lr))
        for (const [k, v] of Object.entries(row.rec.lr)) if (isFiniteNumber(v)) values[`lr.${k}`] = v
      const modality =
        row.rec.modality === "visual" || row.rec.modality === "text" ? row.rec.modality : undefined
      return [
        {
          _tag: "ObservedWindow",
          first,
          last,
          ...(row.epoch === undefined ? {} : { epoch: row.epoch }),
          values,
          ...(row.nonFinite.length > 0 ? { nonFinite: [...row.nonFinite] } : {}),
          ...(modality === undefined ? {} : { modality }),
          line: l.line,
        },
      ]
    },
    end: () => [],
  }
}

export const mmengineReader: ObservedReader<MmengineAnalysis> = {
  format: "mmengine",
  analyzer,
  describe: (a, file, options) => describe(a, file, options),
  converter: (a, file) => converter(a, file),
}
