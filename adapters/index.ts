/**
 * Adapter kinds by name. Each is imported on first use so that a `sim` run never loads
 * TensorFlow.js (and its wasm/webgpu bindings). `exec` and `pytorch` run a trainer as a child
 * process over the step protocol (docs/step-protocol.md).
 */
import { Effect, Layer } from "effect"
import {
  AdapterRegistry,
  AdapterUnavailable,
  TrainingAdapter,
  type TrainingAdapterShape,
} from "../core/run/index.ts"

export const ADAPTER_KINDS = ["sim", "tfjs", "pytorch", "exec"] as const
export type AdapterKind = (typeof ADAPTER_KINDS)[number]

const loaders: Record<AdapterKind, () => Promise<TrainingAdapterShape>> = {
  sim: async () => (await import("./sim/sim.ts")).SimAdapter,
  tfjs: async () => (await import("./tfjs/adapter.ts")).TfjsAdapter,
  pytorch: async () => (await import("./exec/pytorch.ts")).PytorchAdapter,
  exec: async () => (await import("./exec/exec.ts")).ExecAdapter,
}

export const loadAdapter = (kind: string): Effect.Effect<TrainingAdapterShape, AdapterUnavailable> => {
  const load = loaders[kind as AdapterKind]
  if (!load)
    return Effect.fail(
      new AdapterUnavailable({
        message: `unknown adapter "${kind}"; known adapters: ${ADAPTER_KINDS.join(", ")}`,
      }),
    )
  return Effect.tryPromise({
    try: load,
    catch: (e) => new AdapterUnavailable({ message: `adapter "${kind}" failed to load: ${String(e)}` }),
  })
}

export const adapterLayer = (kind: string): Layer.Layer<TrainingAdapter, AdapterUnavailable> =>
  Layer.effect(TrainingAdapter, loadAdapter(kind))

/** Every adapter by kind, for commands that open several (sweeps). */
export const AdapterRegistryLive: Layer.Layer<AdapterRegistry> = Layer.succeed(AdapterRegistry, {
  layer: adapterLayer,
})
