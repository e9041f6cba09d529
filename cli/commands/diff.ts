/** `interleave diff`: two runs compared step by step. */
import { Effect } from "effect"
import { formatBytes, formatDuration, formatMs, formatNumber } from "../../core/common/index.ts"
import { diffRuns } from "../../core/run/index.ts"
import { defineCommand } from "../command.ts"
import { failedCheck } from "../failure.ts"
import { arg } from "../flags.ts"
import { jsonFlag, storeFlag } from "../options.ts"
import { json, line, table } from "../output.ts"
import { withStore } from "../store.ts"

export const diffCommand = defineCommand({
  name: "diff",
  summary: "Compare two runs step by step (exit 1 when they differ, like diff).",
  args: { a: arg.required("runA", "the first run id"), b: arg.required("runB", "the second run id") },
  flags: { store: storeFlag, json: jsonFlag },
  examples: ["interleave diff RUN RUN-fork"],
  run: (o) =>
    Effect.gen(function* () {
      const out = yield* diffRuns(o.a, o.b)
      if (o.json) yield* json(out)
      else {
        const mem = (r: typeof out.a, m: "visual" | "text") =>
          r.memory?.[m] ? formatBytes(r.memory[m]!.max) : "—"
        const figure = out.a.memory?.measure ?? out.b.memory?.measure
        yield* line(
          table(
            [
              "run",
              "status",
              "steps",
              "visual",
              "text",
              "spec",
              "mean V",
              "mean T",
              "total",
              `mem V${figure ? ` (${figure})` : ""}`,
              "mem T",
              "last loss V",
              "last loss T",
            ],
            [out.a, out.b].map((r) => [
              r.runId,
              r.status,
              r.steps,
              r.visualSteps,
              r.textSteps,
              r.specHash ?? "-",
              formatMs(r.stepTime.visual.meanMs),
              formatMs(r.stepTime.text.meanMs),
              `${formatDuration(r.stepTime.totalMs)} ${r.stepTime.kind}`,
              mem(r, "visual"),
              mem(r, "text"),
              formatNumber(r.lastLoss.visual),
              formatNumber(r.lastLoss.text),
            ]),
          ),
        )
        if (out.a.memory && out.b.memory && out.a.memory.source !== out.b.memory.source)
          yield* line(
            `note: the runs' memory figures differ (${out.a.memory.measure} vs ${out.b.memory.measure}): not comparable`,
          )
        const p = out.firstPlanDifference
        yield* line(
          p
            ? `schedules first differ at step ${p.step}: ${p.path} ${JSON.stringify(p.a)} vs ${JSON.stringify(p.b)}`
            : "schedules agree on every common step",
        )
        const l = out.firstLossDifference
        const m = out.meanAbsLossDifference
        yield* line(
          l
            ? `losses first differ at step ${l.step} (${formatNumber(l.a)} vs ${formatNumber(l.b)}); mean |delta| visual ${formatNumber(m.visual)}, text ${formatNumber(m.text)}`
            : "losses identical on every common step",
        )
      }
      if (!out.same) return yield* failedCheck("")
    }).pipe((eff) => withStore(o.store, eff, { readOnly: true })),
})
