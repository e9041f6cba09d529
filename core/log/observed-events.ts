/**
 * Runs we observed: what a foreign training log (MLPerf MLLOG, mmengine `scalars.json` /
 * `*.log.json`, detectron2 `metrics.json`) carries, as run events.
 *
 * Design. A run recorded by the engine has a spec and a full plan: every step says its modality,
 * its lr for every group, whether it applied an update. A foreign log has none of that: it carries
 * windows of iterations (a mean or a median of the losses over the last 20 or 50 iterations, the
 * lr of one parameter group at the window's last iteration), evaluation results, interval marks
 * (MLPerf's block/epoch/eval start and stop) and tracked statistics. Forcing these into
 * `StepCompleted` would invent what the log never said (a modality, an lr per group, per-step
 * losses), so an observed run is its own kind of stream:
 *
 *   RunStarted (spec null, `observed` descriptor)  ObservedWindow* ObservedEval* ObservedInterval*
 *   ObservedStats*  [RunCompleted | RunAborted when the log itself states how the run ended]
 *
 * - `RunStarted.observed` (RunStarted v3; v2 payloads upcast unchanged) says where the events came
 *   from: format, file, its SHA-256, the lines read and skipped, the window semantics of every
 *   field (mean / median / latest over how many iterations), how the log counts iterations, what it
 *   carries and what it lacks. `spec` is null: there is no plan to replay, resume or fork.
 * - Iterations are stored 0-based, as the engine counts steps: mmengine's `step` (runner.iter + 1)
 *   becomes `step - 1`; detectron2's `iteration` is already 0-based. The log's own counters stay
 *   in `at` (MLPerf epoch_num, samples_count, step_num).
 * - The existing event-log rules hold for these streams too (RunStarted first, one terminal last);
 *   `log-step-order` only reads StepCompleted / StepFailed, which observed runs never contain.
 *
 * Every payload is plain JSON, like every other event.
 */
import { Schema } from "effect"
import { Modality } from "../schedule/index.ts"

const Finite = Schema.Finite
const Int = Schema.Int
const Numbers = Schema.Record({ key: Schema.String, value: Finite })

export const OBSERVED_FORMATS = ["mllog", "mmengine", "mmengine-log-json", "detectron2"] as const
export const ObservedFormatSchema = Schema.Literal(...OBSERVED_FORMATS)
export type ObservedFormat = typeof ObservedFormatSchema.Type

/** How the smoothed fields of a record summarise the iterations of its window. */
export const WindowKindSchema = Schema.Literal("mean", "median", "latest", "interval", "none")

/** Where in the source a value lies: its line, and its 0-based iteration when the row has one. */
const PlaceSchema = Schema.Struct({ line: Int, iteration: Schema.optional(Int) })

/** A key whose values the log wrote as NaN / Infinity (dropped from the events): how often, where. */
export const NonFiniteSchema = Schema.Struct({
  key: Schema.String,
  /** Rows that held it non-finite. */
  count: Int,
  /** The first rows (at most NON_FINITE_PLACES), then the last. */
  places: Schema.Array(PlaceSchema),
  last: PlaceSchema,
})
export type NonFinite = typeof NonFiniteSchema.Type

/** Rows listed per non-finite key (the count says how many there were). */
export const NON_FINITE_PLACES = 10

export const ObservedDescriptorSchema = Schema.Struct({
  format: ObservedFormatSchema,
  /** The tool and the kind of file, in words: "mmengine LoggerHook vis_data/scalars.json". */
  source: Schema.String,
  /** The file as it was named on import. */
  file: Schema.String,
  fileSha256: Schema.String,
  fileBytes: Int,
  lines: Schema.Struct({
    total: Int,
    /** Lines that carried a record. */
    read: Int,
    /** Lines that are not records of the format (shell output, other tools' lines, blank lines). */
    skipped: Int,
  }),
  /** How the log counts iterations and how they are stored (0-based). */
  iterations: Schema.String,
  window: Schema.Struct({
    kind: WindowKindSchema,
    /** Iterations per window, when the log has a fixed one (inferred or documented). */
    iterations: Schema.optional(Int),
    description: Schema.String,
  }),
  /** What each field of the records means, with its unit and window. */
  fields: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** What the log carries, in words. */
  carries: Schema.Array(Schema.String),
  /** What the log does not carry, so cannot be checked. */
  lacks: Schema.Array(Schema.String),
  /** Settings the log states (MLPerf seed, global_batch_size, submission_benchmark, ...). */
  settings: Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Finite, Schema.Boolean) }),
  /** MLLOG: lines per key. */
  keyCounts: Schema.optional(Schema.Record({ key: Schema.String, value: Int })),
  /** The per-iteration modality field, when the log has one. */
  modalityField: Schema.optional(Schema.String),
  /** When the file holds several runs appended (detectron2): which one this is. */
  segment: Schema.optional(Schema.Struct({ index: Int, of: Int, firstLine: Int, lastLine: Int })),
  /**
   * MLPerf MLLOG: how many of the source's MLLOG lines the events carry (`mllog`), so that
   * `export --format mllog` writes the original log back. Absent for runs imported before.
   */
  mllogLines: Schema.optional(Int),
  /** Values the log wrote as NaN or infinite, which no event holds: per key, where. */
  nonFinite: Schema.optional(Schema.Array(NonFiniteSchema)),
})
export type ObservedDescriptor = typeof ObservedDescriptorSchema.Type

/** Where in training a point lies, in the log's own counters. */
export const ObservedAtSchema = Schema.Struct({
  /** 0-based iteration. */
  iteration: Schema.optional(Int),
  epoch: Schema.optional(Finite),
  samples: Schema.optional(Finite),
  /** The log's own step counter (MLPerf step_num / step). */
  step: Schema.optional(Finite),
})
export type ObservedAt = typeof ObservedAtSchema.Type

/**
 * One logged training record: the iterations `first..last` (0-based, inclusive) since the previous
 * record (the logging interval). Its smoothed fields summarise the tool's window, which may be
 * longer or shorter: `RunStarted.observed.window` says what it is, when the log lets anyone know.
 */
export const ObservedWindow = Schema.TaggedStruct("ObservedWindow", {
  first: Int,
  last: Int,
  epoch: Schema.optional(Finite),
  /** The record's numeric fields as logged (the descriptor's `fields` says what each one is). */
  values: Numbers,
  /** Fields logged as NaN or infinite. */
  nonFinite: Schema.optional(Schema.Array(Schema.String)),
  /** The modality of the iteration, when the log records one per iteration. */
  modality: Schema.optional(Modality),
  /** Line in the source file. */
  line: Int,
  timeMs: Schema.optional(Finite),
})
export type ObservedWindow = typeof ObservedWindow.Type

export const ObservedEval = Schema.TaggedStruct("ObservedEval", {
  /** The metric's name as the log gives it ("coco/bbox_mAP", "FID"), or the key ("eval_accuracy"). */
  metric: Schema.String,
  value: Finite,
  at: ObservedAtSchema,
  line: Int,
  timeMs: Schema.optional(Finite),
  /**
   * MLPerf MLLOG: the source's lines as written (the JSON after `:::MLLOG `): this event's line,
   * then the lines after it that gave no event (settings, init, cache_clear), and on the run's
   * first event the lines before it too. A line that gives several events is on the first.
   */
  mllog: Schema.optional(Schema.Array(Schema.String)),
})
export type ObservedEval = typeof ObservedEval.Type

/** An interval mark: MLPerf's run/block/epoch/eval start and stop. */
export const ObservedInterval = Schema.TaggedStruct("ObservedInterval", {
  kind: Schema.String,
  edge: Schema.Literal("start", "stop"),
  at: ObservedAtSchema,
  /** The mark's value when it is a word (run_stop's status, block_start's "training_step"). */
  value: Schema.optional(Schema.String),
  line: Int,
  timeMs: Schema.optional(Finite),
  /**
   * MLPerf MLLOG: the source's lines as written (the JSON after `:::MLLOG `): this event's line,
   * then the lines after it that gave no event (settings, init, cache_clear), and on the run's
   * first event the lines before it too. A line that gives several events is on the first.
   */
  mllog: Schema.optional(Schema.Array(Schema.String)),
})
export type ObservedInterval = typeof ObservedInterval.Type

/** Tracked statistics (MLPerf tracked_stats, throughput, current_lr). */
export const ObservedStats = Schema.TaggedStruct("ObservedStats", {
  key: Schema.String,
  values: Numbers,
  at: ObservedAtSchema,
  line: Int,
  timeMs: Schema.optional(Finite),
  /**
   * MLPerf MLLOG: the source's lines as written (the JSON after `:::MLLOG `): this event's line,
   * then the lines after it that gave no event (settings, init, cache_clear), and on the run's
   * first event the lines before it too. A line that gives several events is on the first.
   */
  mllog: Schema.optional(Schema.Array(Schema.String)),
})
export type ObservedStats = typeof ObservedStats.Type

export type ObservedEvent = ObservedWindow | ObservedEval | ObservedInterval | ObservedStats
