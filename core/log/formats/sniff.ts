/**
 * What a file is, from its first bytes: one of the logs this tool reads (ours as JSONL or MLLOG,
 * an MLPerf MLLOG, mmengine's scalars.json or an older log.json, detectron2's metrics.json), or a
 * file of ours that is not a log (a scenario, a benchmark results.json). Used to read a file
 * without `--format`, and to say which `--format` reads a file given the wrong one.
 */
import { isObject, type JsonObject, parseJsonLine } from "./lines.ts"
import { mllogJson } from "./mllog.ts"

/** The `--format` choices of import and verify. */
export const LOG_FORMAT_CHOICES = ["auto", "jsonl", "mllog", "mmengine", "detectron2"] as const
export type LogFormatChoice = (typeof LOG_FORMAT_CHOICES)[number]
export type ReadFormat = Exclude<LogFormatChoice, "auto">

export type FileKind =
  | "jsonl"
  | "mllog-ours"
  | "mllog"
  | "mmengine"
  | "mmengine-log-json"
  | "detectron2"
  | "scenario"
  | "bench-results"
  | "empty"
  | "unknown"

export interface Sniffed {
  readonly kind: FileKind
  /** The kind in words, for messages. */
  readonly description: string
  /** The `--format` that reads it, for logs. */
  readonly readWith: ReadFormat | undefined
}

const KINDS: Readonly<Record<FileKind, Omit<Sniffed, "kind">>> = {
  jsonl: { description: "interleave's JSONL event log", readWith: "jsonl" },
  "mllog-ours": { description: "an MLLOG log written by `interleave export`", readWith: "mllog" },
  mllog: { description: "an MLPerf MLLOG log (lines with :::MLLOG)", readWith: "mllog" },
  mmengine: {
    description: "an mmengine vis_data/scalars.json (rows with step, lr, losses)",
    readWith: "mmengine",
  },
  "mmengine-log-json": {
    description: "an mmcv / mmengine *.log.json (rows with mode, epoch, iter)",
    readWith: "mmengine",
  },
  detectron2: {
    description: "a detectron2 metrics.json (rows with iteration, lr, losses)",
    readWith: "detectron2",
  },
  scenario: {
    description:
      "a scenario file (phases, batch, optimizer), not a log: check it with `interleave verify FILE`",
    readWith: undefined,
  },
  "bench-results": {
    description: "a benchmark results file written by `interleave bench`, not a run log",
    readWith: undefined,
  },
  empty: { description: "an empty file", readWith: undefined },
  unknown: { description: "none of the logs this tool reads", readWith: undefined },
}

const kind = (k: FileKind): Sniffed => ({ kind: k, ...KINDS[k] })

/** The formats in words, for "--format X" messages. */
export const FORMAT_WORDS: Readonly<Record<ReadFormat, string>> = {
  jsonl: "interleave's JSONL",
  mllog: "MLLOG",
  mmengine: "an mmengine scalars.json / log.json",
  detectron2: "a detectron2 metrics.json",
}

const ofRecord = (r: JsonObject): FileKind | undefined => {
  if (typeof r.type === "string" && typeof r.version === "number" && "data" in r) return "jsonl"
  if ("mode" in r && ("epoch" in r || "iter" in r)) return "mmengine-log-json"
  if (!("step" in r) && ["env_info", "config", "exp_name"].some((k) => k in r)) return "mmengine-log-json"
  if ("iteration" in r && !("step" in r)) return "detectron2"
  if ("step" in r) return "mmengine"
  if ("phases" in r && "optimizer" in r) return "scenario"
  if ("schemaVersion" in r && "configs" in r) return "bench-results"
  return undefined
}

/** Sniffs a file from its first bytes (`head`; its last line may be cut, and is ignored then). */
export const sniffText = (file: string, head: string, complete: boolean): Sniffed => {
  const all = head.split(/\r?\n/)
  const lines = complete ? all : all.slice(0, -1)
  // mlcommons' rule: a line counts when it holds ":::MLLOG " anywhere.
  for (const l of lines) {
    const j = mllogJson(l)
    if (j === undefined) continue
    const p = parseJsonLine(j, file, 0)
    const meta = "value" in p && isObject(p.value) ? p.value.metadata : undefined
    return kind(isObject(meta) && meta.interleave !== undefined ? "mllog-ours" : "mllog")
  }
  if (/\.mllog$/i.test(file) && head.trim() !== "") return kind("mllog")
  const first = lines.find((l) => l.trim() !== "")
  if (first === undefined) return kind(head.trim() === "" ? "empty" : "unknown")
  const p = parseJsonLine(first.trim(), file, 0)
  if ("value" in p && isObject(p.value)) {
    const k = ofRecord(p.value)
    if (k) return kind(k)
  }
  // A pretty-printed JSON document: judge it by its keys.
  if (/^\s*\{/.test(head)) {
    if (/"phases"\s*:/.test(head) && /"optimizer"\s*:/.test(head)) return kind("scenario")
    if (/"schemaVersion"\s*:/.test(head) && /"configs"\s*:/.test(head)) return kind("bench-results")
  }
  return kind("unknown")
}
