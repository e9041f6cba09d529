/**
 * The environment a run's results depend on besides its inputs (framework version and build, BLAS
 * library, thread count, CPU or GPU model), as the adapter reports it in `AdapterDescription
 * .environment` and RunStarted records it. A replay compares the recorded one with the replaying
 * session's, so that a divergence says whether, and where, the machine differs: an unrelated
 * package that switches `libblas.so.3` changes float results and nothing else would say why.
 */

export type Environment = Readonly<Record<string, string>>

export interface EnvironmentDifference {
  readonly key: string
  /** Undefined: that side does not report this entry. */
  readonly recorded: string | undefined
  readonly replayed: string | undefined
}

export type EnvironmentComparison =
  | { readonly status: "differs"; readonly differences: ReadonlyArray<EnvironmentDifference> }
  | { readonly status: "matched"; readonly keys: ReadonlyArray<string> }
  /** The log has no environment (written before interleave recorded one, or an adapter that reports none). */
  | { readonly status: "unrecorded" }
  /** The replaying session reports none. */
  | { readonly status: "unreported" }

/** Entry by entry, in the recorded order, then the entries only the replay reports. */
export const compareEnvironments = (
  recorded: Environment | undefined,
  replayed: Environment | undefined,
): EnvironmentComparison => {
  if (recorded === undefined || Object.keys(recorded).length === 0) return { status: "unrecorded" }
  if (replayed === undefined || Object.keys(replayed).length === 0) return { status: "unreported" }
  const keys = [...new Set([...Object.keys(recorded), ...Object.keys(replayed)])]
  const differences = keys.flatMap((key) => {
    const a = Object.hasOwn(recorded, key) ? recorded[key] : undefined
    const b = Object.hasOwn(replayed, key) ? replayed[key] : undefined
    return a === b ? [] : [{ key, recorded: a, replayed: b }]
  })
  return differences.length > 0 ? { status: "differs", differences } : { status: "matched", keys }
}

const shown = (v: string | undefined) => v ?? "(not reported)"

/** One clause: "the environment differs: blas A → B; threads 1 → 2", "the environment matched (…)". */
export const environmentText = (c: EnvironmentComparison): string => {
  switch (c.status) {
    case "differs":
      return `the environment differs: ${c.differences.map((d) => `${d.key} ${shown(d.recorded)} → ${shown(d.replayed)}`).join("; ")}`
    case "matched":
      return `the environment matched the recorded one (${c.keys.join(", ")})`
    case "unrecorded":
      return "the log records no environment (written before interleave recorded one, or by an adapter that reports none), so whether it differs is unknown"
    case "unreported":
      return "the replaying adapter reports no environment, so whether it differs is unknown"
  }
}

/** Environment entries as one line: "torch=1.13.0; blas=/usr/lib/…/libblas.so.3; threads=1". */
export const environmentLine = (env: Environment): string =>
  Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join("; ")
