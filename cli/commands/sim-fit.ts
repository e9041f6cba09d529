/** The sim fitted to a measured sweep, with its error on held-out configurations. */
import { join } from "node:path"
import { Effect, Either, Option } from "effect"
import { crossValidate, fitSim, measuredFromResults } from "../../adapters/sim/index.ts"
import { formatNumber, writeJsonFile } from "../../core/common/index.ts"
import { badInput } from "../failure.ts"
import { json, line, table } from "../output.ts"
import { loadResults } from "./bench.ts"

const pct = (x: number | undefined) => (x === undefined ? "—" : `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`)

export const simFit = (a: {
  readonly file: string
  readonly out: Option.Option<string>
  readonly holdOut: Option.Option<string>
  readonly json: boolean
}) =>
  Effect.gen(function* () {
    const results = yield* loadResults(a.file, "results file")
    const measured = measuredFromResults(results)
    const holdOut = Option.map(a.holdOut, (s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    )
    if (Option.isSome(holdOut) && holdOut.value.length === 0)
      return yield* badInput("--hold-out: give config ids separated by commas")
    const cv = crossValidate(measured, { holdOut: Option.getOrUndefined(holdOut) })
    if (Either.isLeft(cv)) return yield* badInput(`${a.file}: ${cv.left.message}`)
    const all = fitSim(measured, { name: `fitted-${results.name}` })
    if (Either.isLeft(all)) return yield* badInput(`${a.file}: ${all.left.message}`)
    const byId = new Map(measured.map((m) => [m.id, m]))
    const out = {
      source: a.file,
      sweep: results.name,
      machine: results.machine,
      createdAt: new Date().toISOString(),
      method: Option.isSome(holdOut) ? `held out: ${holdOut.value.join(", ")}` : "leave-one-out",
      fits: cv.right.fits,
      mapePct: cv.right.mape,
      heldOut: cv.right.heldOut.map((h) => ({ ...h, measured: byId.get(h.id) })),
      warnings: [...new Set(cv.right.warnings)],
      fitOnAll: {
        time: all.right.time,
        memory: all.right.memory,
        warnings: all.right.warnings,
        hardware: all.right.hardware,
        model: all.right.model,
      },
    }
    const dir = Option.getOrElse(a.out, () => join("out", `bench-${results.name}`))
    const file = join(dir, "sim-fit.json")
    yield* writeJsonFile(file, out)
    if (a.json) return yield* json(out)
    yield* line(`sim fit to ${a.file} (${measured.length} configs, ${out.method}, ${out.fits} fits)`)
    yield* line(
      table(
        [
          "config",
          "V ms meas",
          "V ms pred",
          "V err",
          "T ms meas",
          "T ms pred",
          "T err",
          "peak err",
          "trough err",
        ],
        cv.right.heldOut.map((h) => {
          const m = byId.get(h.id)!
          return [
            h.id,
            formatNumber(m.meanStepMs.visual),
            formatNumber(h.predicted.meanStepMs.visual),
            pct(h.errorPct.stepMsVisual),
            formatNumber(m.meanStepMs.text),
            formatNumber(h.predicted.meanStepMs.text),
            pct(h.errorPct.stepMsText),
            pct(h.errorPct.peakBytes),
            pct(h.errorPct.troughBytes),
          ]
        }),
      ),
    )
    const m = cv.right.mape
    const f = (x: number | undefined) => (x === undefined ? "—" : `${x.toFixed(1)}%`)
    yield* line(`MAPE on held-out configs: step time ${f(m.stepMs)}, memory ${f(m.memory)}, all ${f(m.all)}`)
    // Per-fold warnings repeat across folds; the fit on every config says the same once.
    for (const w of all.right.warnings) yield* line(`warning (fit on all configs): ${w}`)
    if (out.warnings.length > 0)
      yield* line(`${out.warnings.length} warning(s) from the cross-validation fits are in ${file}`)
    yield* line(`wrote ${file}`)
  })
