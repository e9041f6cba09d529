/** `interleave sim fit`: calibrating the sim on a measured sweep (the work is in sim-fit.ts). */
import { Option } from "effect"
import { commandGroup, defineCommand } from "../command.ts"
import { arg, flag } from "../flags.ts"
import { jsonFlag } from "../options.ts"
import { runSimFit } from "./sim-fit.ts"

const simFitCommand = defineCommand({
  name: "fit",
  summary:
    "Calibrate the sim on a measured sweep's results.json: a model profile with fitted terms and its held-out error.",
  details: [
    "Fits the sim's cost and memory terms (docs/sim-profiles.md) to the configurations of one target of a sweep, by non-negative least squares on relative errors; duplicate configurations are merged; a term the sweep cannot identify (one text batch size, one switch share, an update on every step) is held at the base profiles' physical value and named.",
    "The held-out error is measured on whole groups: by default leave-one-group-out over batch sizes; --hold-out 'batch=16', 'batch=16/8', 'ratio=1:1,2:1', 'text-only', 'visual-only' or config ids, groups separated by ';'.",
    "The written profile is the base model profile with a `calibration` block: pass it to `run --model` (with the hardware it was fitted for) or use it in sweeps; on other hardware its physical terms apply, marked uncalibrated.",
  ],
  args: {
    results: arg.required("results", "a sweep's results.json (any adapter: tfjs, pytorch, exec, sim)"),
  },
  flags: {
    out: flag.text("out", "Where to write the calibrated model profile.", {
      value: "PROFILE",
      default: "out/sim-fit/NAME.json, NAME from --name or the sweep",
    }),
    hardware: flag.text(
      "hardware",
      "Hardware profile the sweep ran on (name or file): the priors and the calibration's hardware.",
      {
        value: "NAME",
        default: "the sim sweep's profile, or cpu-2core for a sweep without a GPU",
      },
    ),
    model: flag.text(
      "model",
      "Base model profile (name or file): the priors and every field the fit does not set.",
      {
        value: "NAME",
        default: "trex2-PRESET for the sweep's preset, else the sim's default model",
      },
    ),
    holdOut: flag.text(
      "hold-out",
      "Groups to hold out, ';'-separated: batch=N, batch=V/T, ratio=A:B[,C:D], text-only, visual-only, or config ids.",
      {
        value: "GROUPS",
        default: "leave-one-group-out over batch sizes",
      },
    ),
    target: flag.text(
      "target",
      "With several targets in the results: the one to fit (a substring of adapter/backend/preset/hardware).",
      {
        value: "TEXT",
      },
    ),
    name: flag.text("name", "Name of the written profile.", { value: "NAME", default: "MODEL-SWEEP" }),
    report: flag.text("report", "Also write the fit's report (every held-out prediction) as JSON.", {
      value: "FILE",
    }),
    json: jsonFlag,
  },
  examples: [
    "interleave sim fit benchmarks/results/ratios-tiny-wasm/results.json --out out/tiny-cpu.json",
    "interleave sim fit results.json --hardware cpu-2core --model trex2-tiny --hold-out 'batch=16;text-only' --out fit.json",
  ],
  run: (o) =>
    runSimFit({
      file: o.results,
      paths: (sweep) => ({
        profileOut: Option.getOrElse(
          o.out,
          () => `out/sim-fit/${Option.getOrElse(o.name, () => sweep)}.json`,
        ),
        reportOut: Option.getOrUndefined(o.report),
      }),
      hardware: Option.getOrUndefined(o.hardware),
      model: Option.getOrUndefined(o.model),
      holdOut: Option.getOrUndefined(o.holdOut),
      target: Option.getOrUndefined(o.target),
      name: Option.getOrUndefined(o.name),
      json: o.json,
    }),
})

export const simCommand = commandGroup(
  "sim",
  "The simulator: calibrate it on a measured sweep (sim fit).",
  [simFitCommand],
  ["interleave sim fit benchmarks/results/ratios-tiny-wasm/results.json --out out/tiny-cpu.json"],
)
