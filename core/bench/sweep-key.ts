/**
 * A sweep's identity in a shared store: its name and a hash of its expanded configurations
 * (`ratios-sim-h100@3fa2c1d09b7e`). Workers on different machines that load the same sweep file
 * get the same key, so they join one sweep; a changed file (a ratio, a batch size, a step count,
 * the base scenario, a profile file's contents) is a new key, hence a new sweep.
 *
 * Portable: a profile named by path is hashed by its file name and contents, not by where it
 * lies, since each machine resolves the sweep's relative paths against its own checkout.
 */
import { basename } from "node:path"
import { Effect } from "effect"
import { errnoText, hashBytes, hashJson, InputError, looksLikePath, readInputBytes } from "../common/index.ts"
import { runIdFrom } from "../run/index.ts"
import { encodeSpec } from "../schedule/index.ts"
import type { LoadedSweep } from "./sweep-run.ts"

export interface SweepIdentity {
  readonly name: string
  /** 12 hex digits of the SHA-256 of the configurations' canonical JSON. */
  readonly hash: string
  /** `NAME@HASH` */
  readonly key: string
}

/** An adapter option that names a file becomes its base name and a hash of its bytes. */
const portableOption = (value: unknown): Effect.Effect<unknown, InputError> => {
  if (typeof value !== "string" || !looksLikePath(value)) return Effect.succeed(value)
  return Effect.try({
    try: () => ({ file: basename(value), sha256: hashBytes(readInputBytes(value, "profile")) }),
    catch: (e) =>
      e instanceof InputError
        ? e
        : new InputError({ message: `${value}: cannot read the profile (${errnoText(e)})` }),
  })
}

/** The key of a loaded sweep (reads the profile files it names by path). */
export const sweepIdentity = (loaded: LoadedSweep): Effect.Effect<SweepIdentity, InputError> =>
  Effect.gen(function* () {
    const configs = []
    for (const c of loaded.configs) {
      const options: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(c.adapterOptions)) options[k] = yield* portableOption(v)
      configs.push({
        id: c.id,
        spec: encodeSpec(c.spec),
        adapter: c.target.adapter,
        options,
        warmupSteps: c.warmupSteps,
        measuredSteps: c.measuredSteps,
      })
    }
    const engine = { evalEvery: loaded.sweep.evalEvery, checkpointEvery: loaded.sweep.checkpointEvery }
    const hash = hashJson({ configs, engine }).slice(0, 12)
    return { name: loaded.sweep.name, hash, key: `${loaded.sweep.name}@${hash}` }
  })

/** The run id of a configuration's attempt: `bench-NAME-HASH8-CONFIG-aN` (the name cut to fit). */
export const attemptRunId = (identity: SweepIdentity, configId: string, attempt: number): string =>
  runIdFrom(`bench-${identity.name}`, `${identity.hash.slice(0, 8)}-${configId}-a${attempt}`)
