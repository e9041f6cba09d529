/** Flags and arguments several commands share, defined once. */
import { LOG_FORMAT_CHOICES } from "../core/log/index.ts"
import { DEFAULT_STORE_PATH } from "../core/store/index.ts"
import { arg, flag, flagWithDefault } from "./flags.ts"

export const storeFlag = flagWithDefault.text(
  "store",
  "Event store: a SQLite file, or a PostgreSQL URL shared by many machines, postgres://USER[:PASSWORD]@HOST:PORT/DB (postgresql:// too; ?schema=NAME, default interleave). INTERLEAVE_STORE sets it too; the flag wins.",
  process.env.INTERLEAVE_STORE ?? DEFAULT_STORE_PATH,
  { value: "FILE|URL", default: `${DEFAULT_STORE_PATH} (or INTERLEAVE_STORE)` },
)

export const jsonFlag = flag.boolean("json", "Print machine-readable JSON on stdout instead of tables.")

export const runArg = arg.required("run", "a run id in the store (see `interleave runs`)")
export const scenarioArg = arg.required("scenario", "a scenario JSON file (see scenarios/)")

export const runIdFlag = flag.text(
  "run-id",
  "Id for the new run: letters, digits, '.', '_', '-', at most 128 characters.",
  { value: "ID", default: "NAME-DATE-RANDOM" },
)

/** `--format` of the commands that read a log file (import, verify --log). */
export const logFormatFlag = flagWithDefault.choice(
  "format",
  LOG_FORMAT_CHOICES,
  "Log format: interleave's JSONL or MLLOG, an MLPerf MLLOG, an mmengine scalars.json / log.json, a detectron2 metrics.json.",
  "auto",
  { default: "auto (what the file's first lines look like)" },
)

export const windowFlag = flag.integer(
  "window",
  "For an mmengine scalars.json: the iterations each logged loss and time is a mean over (LogProcessor's window_size), which the file does not record.",
  {
    value: "N",
    default:
      "what a config next to the file (vis_data/config.py, the work dir's <name>.py, the <timestamp>.log) states, else unknown",
  },
)

export const segmentFlag = flag.integer(
  "segment",
  "Which run of a detectron2 metrics.json that holds several appended (1-based).",
  { value: "N", default: "the only one; a file with several needs it" },
)
