/**
 * The sim calibrated on a measured sweep: `interleave sim fit RESULTS --out PROFILE` (and, the
 * older way in, `interleave bench --sim-of RESULTS`). Parses, calls adapters/sim's `calibrate`,
 * prints every fitted number with its unit and the held-out error per group, writes the profile.
 */
import { join } from "node:path"
import { Effect, Either, Option, Schema } from "effect"
import {
  bundledProfiles,
  type CalibrateOutput,
  calibrate,
  DEFAULT_MODEL,
  type FittedTerm,
  type HeldOutMape,
  loadHardwareProfile,
  loadModelProfile,
  ModelProfile,
  percentText,
} from "../../adapters/sim/index.ts"
import { parseSweepResults, type SweepResults } from "../../core/bench/index.ts"
import {
  formatBytes,
  formatMs,
  formatNumber,
  hashBytes,
  RESULTS_MAX_BYTES,
  readTextFile,
  writeJsonFile,
} from "../../core/common/index.ts"
import { badInput } from "../failure.ts"
import { json, line, table } from "../output.ts"

export interface SimFitArgs {
  readonly file: string
  /** Where the calibrated model profile and (when given) the fit's JSON report go, from the sweep's name. */
  readonly paths: (sweep: string) => { readonly profileOut: string; readonly reportOut?: string | undefined }
  readonly hardware?: string | undefined
  readonly model?: string | undefined
  readonly holdOut?: string | undefined
  readonly target?: string | undefined
  readonly name?: string | undefined
  readonly json: boolean
}

const MEMORY_WORDS: Record<string, string> = {
  peakBytes: "in-step peak",
  allocatedBytes: "allocated",
  reservedBytes: "reserved",
  deviceBytes: "device",
  rssBytes: "RSS",
}

/** "per visual sample 4.68 ms", "text switch 1.20 ms", "visual resident + fixed 1.06 MiB". */
const termWords = (t: FittedTerm): string => {
  const [kind, m, key] = t.term.split(".") as [string, string, string]
  const label =
    kind === "time"
      ? {
          fixedMs: `fixed per ${m} step`,
          perSampleMs: `per ${m} sample`,
          switchMs: `${m} switch (first ${m} step after the other modality)`,
          updateMs: `optimizer update after a ${m} step`,
        }[key]
      : {
          fixedBytes: `${m} fixed (weights, optimizer state, gradients, activations not scaling with batch)`,
          perSampleBytes: `per ${m} sample`,
          perSampleSquaredBytes: `per ${m} sample squared`,
        }[key]
  const value = t.unit === "ms" ? formatMs(t.value) : formatBytes(t.value)
  return `${label ?? t.term} ${value}`
}

const status = (t: FittedTerm): string =>
  t.status === "fitted" ? "fitted" : t.status === "fitted-at-bound" ? "fitted, at the bound 0" : "prior"

const mapeRow = (label: string, n: number, m: HeldOutMape, priors: string) => [
  label,
  n,
  percentText(m.visualStepMs),
  percentText(m.textStepMs),
  percentText(m.peakBytes),
  priors,
]

/** The default base model: the bundled profile of the sweep's preset (trex2-tiny for preset tiny). */
const defaultModel = (results: SweepResults): string => {
  const presets = [...new Set(results.configs.map((c) => c.preset).filter((p) => p !== undefined))]
  const bundled = bundledProfiles("models")
  const guess = presets.length === 1 ? `trex2-${presets[0]}` : undefined
  return guess !== undefined && bundled.includes(guess) ? guess : DEFAULT_MODEL
}

/** The default base hardware: the sim's own profile for sim sweeps, cpu-2core for sweeps without a GPU. */
const defaultHardware = (results: SweepResults, target: string | undefined): string | undefined => {
  // Among the configurations of the target being fitted (`--target` narrows a multi-target sweep).
  const mine = results.configs.filter(
    (c) =>
      c.adapter === "sim" && (target === undefined || `${c.adapter}/${c.hardware ?? ""}`.includes(target)),
  )
  const sim = [...new Set(mine.map((c) => c.hardware))]
  if (sim.length === 1 && sim[0] !== undefined) return sim[0]
  return results.machine.gpu === undefined ? "cpu-2core" : undefined
}

const describeOut = (o: CalibrateOutput) => ({
  profile: o.profile.name,
  calibration: o.calibration,
  configs: o.configs.map((c) => ({ id: c.id, merges: c.ids, batch: c.batch, ratio: c.ratio })),
  heldOut: o.crossValidation.heldOut.map((h) => ({
    id: h.id,
    group: h.group,
    measured: { meanStepMs: h.measured.meanStepMs, peakBytes: h.measured.memory?.peakBytes },
    predicted: h.predicted,
    errorPct: h.errorPct,
  })),
  heldOutGroups: o.crossValidation.groups,
})

export const runSimFit = (a: SimFitArgs) =>
  Effect.gen(function* () {
    const text = yield* readTextFile(a.file, "results file", RESULTS_MAX_BYTES)
    const results = yield* Either.match(parseSweepResults(text, a.file), {
      onLeft: (e) => Effect.fail(badInput(e.message)),
      onRight: (r) => Effect.succeed(r),
    })
    const { profileOut, reportOut } = a.paths(results.name)
    const notes: string[] = []
    const hwName = a.hardware ?? defaultHardware(results, a.target)
    if (hwName === undefined)
      return yield* badInput(
        `${a.file}: the sweep ran on ${results.machine.gpu}: name the hardware profile it was measured on with --hardware NAME|FILE`,
      )
    if (a.hardware === undefined) notes.push(`hardware ${hwName} assumed (name another with --hardware)`)
    const modelName = a.model ?? defaultModel(results)
    if (a.model === undefined) notes.push(`base model ${modelName} assumed (name another with --model)`)
    const hw = yield* Effect.mapError(loadHardwareProfile(hwName), (e) => badInput(e.message))
    const model = yield* Effect.mapError(loadModelProfile(modelName), (e) => badInput(e.message))
    const out = yield* Either.match(
      calibrate({
        results,
        file: a.file,
        sha256: hashBytes(text),
        hardware: hw.profile,
        model: model.profile,
        holdOut: a.holdOut,
        target: a.target,
        name: a.name,
        now: new Date().toISOString(),
      }),
      { onLeft: (e) => Effect.fail(badInput(`${a.file}: ${e.message}`)), onRight: (o) => Effect.succeed(o) },
    )
    yield* writeJsonFile(profileOut, Schema.encodeSync(ModelProfile)(out.profile))
    const report = { ...describeOut(out), profileFile: profileOut, notes }
    if (reportOut !== undefined) yield* writeJsonFile(reportOut, report)
    if (a.json) return yield* json(report)

    const c = out.calibration
    const src = out.sweep
    yield* line(
      `sim fit to ${a.file} (sha256 ${c.source.sha256.slice(0, 12)}…): sweep ${src.sweep}, ${src.adapter}${src.backend ? `/${src.backend}` : ""}${src.preset ? ` ${src.preset}` : ""} on ${src.machine}; ${src.configs.length} configs, ${out.configs.length} after merging duplicates`,
    )
    for (const n of notes) yield* line(`note: ${n}`)
    for (const w of c.warnings) yield* line(`warning: ${w}`)
    yield* line(
      `priors: the physical terms of ${hw.profile.name} x ${model.profile.name}; a term the configs cannot identify is held at its prior`,
    )
    yield* line(
      `\nfitted on all ${out.configs.length} configs (simulated step = fixed + per sample x batch; + update, + switch):`,
    )
    const byGroup = (prefix: string) => c.terms.filter((t) => t.term.startsWith(prefix))
    for (const [title, prefix] of [
      ["visual step time", "time.visual."],
      ["text step time", "time.text."],
      [`memory (${MEMORY_WORDS[c.memory?.figure ?? ""] ?? "none"}), visual step`, "memory.visual."],
      [`memory (${MEMORY_WORDS[c.memory?.figure ?? ""] ?? "none"}), text step`, "memory.text."],
    ] as const) {
      const ts = byGroup(prefix)
      if (ts.length === 0) continue
      yield* line(`  ${title}:`)
      for (const t of ts)
        yield* line(`    ${termWords(t)} [${status(t)}]${t.status === "fitted" ? "" : `: ${t.note ?? ""}`}`)
    }
    const cv = out.crossValidation
    yield* line(
      `\nheld-out error, MAPE (${cv.method}), on mean step time per modality and on each config's peak memory:`,
    )
    yield* line(
      table(
        ["held out", "configs", "visual step time", "text step time", "peak memory", "terms held at priors"],
        [
          ...cv.groups.map((g) =>
            mapeRow(g.group, g.configs.length, g.mapePct, formatNumber(g.priorTerms.length)),
          ),
          mapeRow("all held-out predictions", cv.heldOut.length, cv.mapePct, ""),
        ],
      ),
    )
    const where = profileOut
    yield* line(
      `\nwrote ${where}: model profile ${out.profile.name}, calibrated for hardware ${hw.profile.name}`,
    )
    if (reportOut !== undefined) yield* line(`wrote ${reportOut} (every held-out prediction)`)
    yield* line(`run it: interleave run SCENARIO --hardware ${hwName} --model ${where}`)
  })

/**
 * `interleave bench --sim-of RESULTS [--out DIR] [--hold-out GROUPS] [--json]`: the same fit,
 * writing DIR/sim-fit.json (the report) and DIR/sim-profile.json (the calibrated profile).
 */
export const simFit = (a: {
  readonly file: string
  readonly out: Option.Option<string>
  readonly holdOut: Option.Option<string>
  readonly json: boolean
}) =>
  Effect.gen(function* () {
    return yield* runSimFit({
      file: a.file,
      paths: (sweep) => {
        const dir = Option.getOrElse(a.out, () => join("out", `bench-${sweep}`))
        return { profileOut: join(dir, "sim-profile.json"), reportOut: join(dir, "sim-fit.json") }
      },
      holdOut: Option.getOrUndefined(a.holdOut),
      json: a.json,
    })
  })
