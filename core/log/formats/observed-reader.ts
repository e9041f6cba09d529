/**
 * Reading a foreign log as an observed run, in two passes over the file and bounded memory:
 *
 * 1. analysis: every line is parsed and checked (a malformed record stops here, naming its file,
 *    line and field), and what the run-level descriptor needs is gathered: counts, the logging
 *    interval, settings, how the run ended, runs appended to one file;
 * 2. conversion: the same lines become events, `RunStarted` (with the descriptor) first and the
 *    terminal event, when the log states one, last.
 *
 * Each format (mllog.ts, mmengine.ts, detectron2.ts) supplies the two folds; this module drives them.
 */
import { basename, dirname } from "node:path"
import { Effect, Either, Stream } from "effect"
import { checkReadableFile, InputError } from "../../common/index.ts"
import type { RunEvent, RunStarted } from "../events.ts"
import type { ObservedDescriptor, ObservedFormat } from "../observed-events.ts"
import { fileDigest, fileLines, type Line, LogFileError, toInputError } from "./lines.ts"

export interface Analyzer<A> {
  readonly push: (l: Line) => LogFileError | undefined
  readonly finish: () => Either.Either<A, LogFileError>
}

export interface Converter {
  readonly push: (l: Line) => ReadonlyArray<RunEvent>
  readonly end: () => ReadonlyArray<RunEvent>
}

export interface ReadOptions {
  /** Which of several runs appended to one file (1-based), for formats that append. */
  readonly segment?: number | undefined
  /**
   * Iterations each smoothed value is a mean over, as the user knows it (`--window N`), for logs
   * that do not record it (mmengine's scalars.json: LogProcessor's window_size).
   */
  readonly window?: number | undefined
}

/** What a format says about the whole run, from its analysis. */
export interface Described {
  readonly descriptor: Omit<ObservedDescriptor, "file" | "fileSha256" | "fileBytes">
  /** A short name for the run id: the benchmark, the tool. */
  readonly name: string
  /** Appended to the run id (which of several runs in one file). */
  readonly suffix?: string | undefined
  readonly startedAt: number
  /** 0-based iterations the log covers (last + 1), 0 when it has no iterations. */
  readonly steps: number
  readonly seed: number
}

export interface ObservedReader<A> {
  readonly format: ObservedFormat
  readonly analyzer: (file: string) => Analyzer<A>
  readonly describe: (
    a: A,
    file: string,
    options: ReadOptions,
  ) => Either.Either<Described, LogFileError | string>
  readonly converter: (a: A, file: string, options: ReadOptions) => Converter
}

export interface ObservedLog {
  readonly started: RunStarted
  /** RunStarted, then every event of the log, then its terminal event if it states one; reads the file again. */
  readonly events: Stream.Stream<RunEvent, InputError>
}

const GENERIC_NAMES = new Set(["scalars", "metrics", "log", "result", "results", "train", "events"])

/** A run id for a file: its name (or its folder's, for generic names), a hint and a digest prefix. */
export const observedRunId = (file: string, hint: string, sha256: string, suffix = ""): string => {
  let name = basename(file)
    .replace(/\.(json|jsonl|log|txt|mllog)$/i, "")
    .replace(/\.log$/i, "")
  if (GENERIC_NAMES.has(name.replace(/_\d+$/, "").toLowerCase())) {
    const parent = basename(dirname(file))
    const grand = basename(dirname(dirname(file)))
    name = `${parent === "vis_data" ? grand : parent}-${name}`
  }
  // A benchmark's name says more than a result file's ("result_0"); a tool's name is a prefix.
  const base = (hint.startsWith("mlperf-") ? hint : hint && !name.startsWith(hint) ? `${hint}-${name}` : name)
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[^A-Za-z0-9]+/, "")
    .replace(/-+$/, "")
    .slice(0, 100)
  return `${base || "observed"}${suffix ? `-${suffix}` : ""}-${sha256.slice(0, 8)}`
}

/** Runs the analysis pass and returns the run's RunStarted and its event stream (the second pass). */
export const readObserved = <A>(
  file: string,
  reader: ObservedReader<A>,
  options: ReadOptions = {},
): Effect.Effect<ObservedLog, InputError> =>
  Effect.gen(function* () {
    yield* checkReadableFile(file, "log file")
    const digest = yield* fileDigest(file)
    const analyzer = reader.analyzer(file)
    yield* fileLines(file).pipe(
      Stream.runForEachChunk((chunk) => {
        for (const l of chunk) {
          const e = analyzer.push(l)
          if (e) return Effect.fail(toInputError(e))
        }
        return Effect.void
      }),
    )
    const analysis = analyzer.finish()
    if (Either.isLeft(analysis)) return yield* Effect.fail(toInputError(analysis.left))
    const d = reader.describe(analysis.right, file, options)
    if (Either.isLeft(d))
      return yield* Effect.fail(
        d.left instanceof LogFileError ? toInputError(d.left) : new InputError({ message: d.left }),
      )
    const described = d.right
    const started: RunStarted = {
      _tag: "RunStarted",
      runId: observedRunId(file, described.name, digest.sha256, described.suffix),
      spec: null,
      specHash: "",
      source: `${described.descriptor.source}: ${file}`,
      steps: described.steps,
      seed: described.seed,
      adapter: { kind: "observed", options: {}, info: { format: reader.format } },
      versions: {},
      startedAt: described.startedAt,
      engine: { evalEvery: 0, checkpointEvery: 0 },
      observed: { ...described.descriptor, file, fileSha256: digest.sha256, fileBytes: digest.bytes },
    }
    const events = Stream.suspend(() => {
      const c = reader.converter(analysis.right, file, options)
      return Stream.concat(
        Stream.make<RunEvent[]>(started),
        Stream.concat(
          fileLines(file).pipe(Stream.mapConcat((l) => c.push(l))),
          Stream.suspend(() => Stream.fromIterable(c.end())),
        ),
      )
    })
    return { started, events }
  })
