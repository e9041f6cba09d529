/**
 * TensorFlow.js backends: `cpu | wasm | webgpu | tensorflow`, loaded on demand, never a silent
 * fallback (tfjs itself falls back to cpu when a backend fails; we check `tf.getBackend()` after
 * `setBackend` and refuse instead).
 *
 * - webgpu: Dawn's `webgpu` package. `@tensorflow/tfjs-backend-webgpu` registers itself at import
 *   time only if `navigator.gpu` exists then, so the GPU globals are installed first and the
 *   backend is imported dynamically afterwards (a static import leaves it unregistered). We ask
 *   Dawn for an adapter before importing, so a machine without a GPU answers at once.
 * - tensorflow: `@tensorflow/tfjs-node-gpu`, else `@tensorflow/tfjs-node`, when installed (they
 *   are optional dependencies whose install needs libtensorflow; usually absent).
 */
import { spawnSync } from "node:child_process"
import * as os from "node:os"
// Named imports, not bare ones: the cpu package marks its Node build side-effect free, so a
// bundler (esbuild, in ../shared/gpu/pack.sh) would drop `import "@tensorflow/tfjs-backend-cpu"`
// and with it the backend's registration.
import { version_cpu } from "@tensorflow/tfjs-backend-cpu"
import { version_wasm } from "@tensorflow/tfjs-backend-wasm"
import * as tf from "@tensorflow/tfjs-core"
import { packageRoot } from "../../core/common/index.ts"

export const BACKEND_NAMES = ["cpu", "wasm", "webgpu", "tensorflow"] as const
export type BackendName = (typeof BACKEND_NAMES)[number]

export const isBackendName = (s: unknown): s is BackendName =>
  typeof s === "string" && (BACKEND_NAMES as ReadonlyArray<string>).includes(s)

export interface BackendStatus {
  readonly name: BackendName
  readonly available: boolean
  /** What it runs on: CPU model, wasm features, GPU adapter. */
  readonly device?: string | undefined
  /** Why it is unavailable. */
  readonly reason?: string | undefined
}

/** A backend that cannot be used here; the message names the ones that can. */
export class BackendUnavailableError extends Error {
  override readonly name = "BackendUnavailableError"
}

/** Device text of the JS backend; naming the package version keeps it in bundles. */
const jsDevice = (): string => `JavaScript (tfjs-backend-cpu ${version_cpu}) on ${cpuDevice()}`

const cpuDevice = (): string => {
  const cpus = os.cpus()
  return `${cpus[0]?.model?.trim() ?? "unknown CPU"} (${cpus.length} cores, ${os.arch()})`
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

// ---- webgpu ------------------------------------------------------------------------------------

interface GpuAdapterLike {
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string }
}
interface GpuLike {
  requestAdapter(options?: unknown): Promise<GpuAdapterLike | null>
}

let webgpuProbe: Promise<{ device: string } | { reason: string }> | undefined

const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([
    p,
    new Promise<A>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms).unref(),
    ),
  ])

const describeAdapter = (a: GpuAdapterLike): string => {
  const i = a.info ?? {}
  const parts = [i.vendor, i.architecture, i.device, i.description].filter((s) => s && s.length > 0)
  return parts.length > 0 ? `WebGPU (Dawn): ${parts.join(" ")}` : "WebGPU (Dawn): unnamed adapter"
}

/**
 * Asks Dawn for an adapter in a child process first. Where there is no GPU, Dawn prints its
 * driver search (a native "Warning: ... at operator() (...)" trace) on stderr, which must not reach
 * the user; the child's stderr is dropped, and this process loads Dawn only when a GPU is there.
 */
const gpuInChildProcess = (): { device: string } | { reason: string } | undefined => {
  const script = `import("webgpu").then(async (m) => { Object.assign(globalThis, m.globals); const a = await m.create([]).requestAdapter(); process.stdout.write(JSON.stringify(a ? { ok: true } : { ok: false })); process.exit(0) }, (e) => { process.stdout.write(JSON.stringify({ ok: false, error: String(e) })); process.exit(0) })`
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: packageRoot,
    encoding: "utf8",
    timeout: 20_000,
    stdio: ["ignore", "pipe", "ignore"],
  })
  try {
    const out = JSON.parse(r.stdout) as { ok: boolean; error?: string }
    if (out.ok) return undefined
    return {
      reason: out.error
        ? `the webgpu package (Dawn) did not load: ${out.error}`
        : "no GPU adapter: Dawn found no usable GPU driver (Vulkan/Metal/D3D12) here",
    }
  } catch {
    // The child could not run (no node binary to re-run, a timeout): probe in-process instead.
    return undefined
  }
}

/** Installs Dawn's navigator.gpu, finds an adapter, then registers tfjs's webgpu backend. Once. */
const probeWebgpu = (): Promise<{ device: string } | { reason: string }> => {
  webgpuProbe ??= (async () => {
    const none = gpuInChildProcess()
    if (none) return none
    let gpu: GpuLike
    try {
      const mod = (await import("webgpu")) as unknown as {
        create: (flags: string[]) => GpuLike
        globals: Record<string, unknown>
      }
      Object.assign(globalThis, mod.globals)
      gpu = mod.create([])
    } catch (e) {
      return { reason: `the webgpu package (Dawn) did not load: ${errorText(e)}` }
    }
    let adapter: GpuAdapterLike | null
    try {
      adapter = await withTimeout(gpu.requestAdapter(), 15_000, "requestAdapter")
    } catch (e) {
      return { reason: `no GPU adapter: ${errorText(e)}` }
    }
    if (!adapter)
      return { reason: "no GPU adapter: Dawn found no usable GPU driver (Vulkan/Metal/D3D12) here" }
    // Node 21+ defines a getter-only navigator; define the property rather than assign it.
    const nav = (globalThis as { navigator?: object }).navigator ?? {}
    Object.defineProperty(globalThis, "navigator", {
      value: Object.assign(Object.create(nav), { gpu }),
      configurable: true,
      writable: true,
    })
    try {
      await import("@tensorflow/tfjs-backend-webgpu")
    } catch (e) {
      return { reason: `@tensorflow/tfjs-backend-webgpu did not load: ${errorText(e)}` }
    }
    if (!tf.findBackendFactory("webgpu"))
      return {
        reason: "@tensorflow/tfjs-backend-webgpu loaded but did not register (navigator.gpu missing?)",
      }
    return { device: describeAdapter(adapter) }
  })()
  return webgpuProbe
}

// ---- tensorflow (tfjs-node) --------------------------------------------------------------------

let nodeProbe: Promise<{ device: string } | { reason: string }> | undefined

const probeTensorflow = (): Promise<{ device: string } | { reason: string }> => {
  nodeProbe ??= (async () => {
    const tried: string[] = []
    for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
      try {
        // A variable specifier: bundlers leave it to run time, where the package may be absent.
        const specifier = pkg
        await import(specifier)
        if (tf.findBackendFactory("tensorflow"))
          return { device: `${pkg} (libtensorflow${pkg.endsWith("gpu") ? ", CUDA" : ", CPU"})` }
        tried.push(`${pkg} loaded but registered no "tensorflow" backend`)
      } catch (e) {
        const why = errorText(e).split("\n")[0] ?? ""
        tried.push(`${pkg}: ${/Cannot find (package|module)/.test(why) ? "not installed" : why}`)
      }
    }
    return {
      reason: `neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed (optional dependencies that need libtensorflow): ${tried.join("; ")}`,
    }
  })()
  return nodeProbe
}

// ---- wasm --------------------------------------------------------------------------------------

const wasmFeatures = async (): Promise<string> => {
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")
  const threads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")
  return `WebAssembly (tfjs-backend-wasm ${version_wasm}, SIMD ${simd ? "on" : "off"}, threads ${threads ? "on" : "off"}) on ${cpuDevice()}`
}

// ---- public ------------------------------------------------------------------------------------

/** Availability of every backend on this machine. Does not change the active backend. */
export const listBackends = async (): Promise<BackendStatus[]> => {
  const out: BackendStatus[] = [{ name: "cpu", available: true, device: jsDevice() }]
  const wasmOk = tf.findBackendFactory("wasm") !== null
  out.push(
    wasmOk
      ? { name: "wasm", available: true, device: await wasmFeatures() }
      : { name: "wasm", available: false, reason: "@tensorflow/tfjs-backend-wasm did not register" },
  )
  for (const [name, probe] of [
    ["webgpu", probeWebgpu],
    ["tensorflow", probeTensorflow],
  ] as const) {
    const r = await probe()
    out.push(
      "device" in r
        ? { name, available: true, device: r.device }
        : { name, available: false, reason: r.reason },
    )
  }
  return out
}

const availableSummary = async (): Promise<string> =>
  (await listBackends())
    .filter((b) => b.available)
    .map((b) => b.name)
    .join(", ")

/**
 * Makes `name` the active tfjs backend and returns its device description, or throws a
 * BackendUnavailableError that names the available backends.
 */
export const useBackend = async (name: string): Promise<{ name: BackendName; device: string }> => {
  if (!isBackendName(name))
    throw new BackendUnavailableError(
      `unknown tfjs backend "${name}": known backends are ${BACKEND_NAMES.join(", ")}; available here: ${await availableSummary()}`,
    )
  let device: string
  if (name === "webgpu" || name === "tensorflow") {
    const r = await (name === "webgpu" ? probeWebgpu() : probeTensorflow())
    if ("reason" in r)
      throw new BackendUnavailableError(
        `tfjs backend "${name}" is unavailable: ${r.reason}. Available here: ${await availableSummary()}`,
      )
    device = r.device
  } else device = name === "wasm" ? await wasmFeatures() : jsDevice()
  let ok = false
  let cause = ""
  try {
    ok = await tf.setBackend(name)
    await tf.ready()
  } catch (e) {
    cause = `: ${errorText(e)}`
  }
  if (!ok || tf.getBackend() !== name)
    throw new BackendUnavailableError(
      `tfjs backend "${name}" failed to initialise${cause} (active backend: ${tf.getBackend() ?? "none"}). Available here: ${await availableSummary()}`,
    )
  return { name, device }
}
