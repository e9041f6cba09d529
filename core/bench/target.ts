/**
 * What a configuration ran on, apart from its ratio and batch size: the key that groups a sweep's
 * configurations into one line across ratios (charts, cross-ratio notes) and its words.
 */
import type { ConfigResult } from "./results.ts"

/** "sim", "tfjs/webgpu", plus the preset when there is one. */
export const adapterLabel = (c: ConfigResult): string =>
  `${c.adapter}${c.backend ? `/${c.backend}` : ""}${c.preset ? ` (${c.preset})` : ""}`

/** A sweep's ids end in `-<V>x<T>-b<bv>x<bt>` (core/bench/sweep.ts); what comes before names the target. */
const ID_SUFFIX = /-\d+x\d+-b\d+x\d+$/
/** A sweep's labels start with `<ratio> b<bv>/<bt> `; what follows names the target. */
const LABEL_PREFIX = /^\S+ b\d+\/\d+ (.+)$/

/**
 * Same value for configurations that ran on the same target (adapter, backend or hardware,
 * model or preset): the id's target part when the id has a sweep's shape, else the fields.
 */
export const targetKey = (c: ConfigResult): string =>
  ID_SUFFIX.test(c.id)
    ? c.id.replace(ID_SUFFIX, "")
    : JSON.stringify([c.adapter, c.backend ?? "", c.preset ?? "", c.hardware ?? ""])

/** The target in words: `sim h100-sxm trex2-swin-t`, `tfjs/wasm tiny`. */
export const targetText = (c: ConfigResult): string => {
  const m = LABEL_PREFIX.exec(c.label)
  if (m) return m[1]!
  return `${adapterLabel(c)}${c.adapter === "sim" && c.hardware ? ` ${c.hardware}` : ""}`
}

/** A line across ratios: target and batch, `sim h100-sxm trex2-swin-t b16/8`. */
export const seriesText = (c: ConfigResult): string => `${targetText(c)} b${c.batch.visual}/${c.batch.text}`

/** True for numbers the sim computed rather than measured (time and memory alike). */
export const isSimulated = (c: ConfigResult): boolean => c.adapter === "sim"

/** The visual share V/(V+T) that orders ratios: text-only (0) ... 1:1 (0.5) ... visual-only (1). */
export const visualShare = (r: { readonly visual: number; readonly text: number }): number =>
  r.visual + r.text === 0 ? 0 : r.visual / (r.visual + r.text)

/** `visual-only`, `text-only`, or `V:T`. */
export const ratioLabel = (r: { readonly visual: number; readonly text: number }): string =>
  r.text === 0 ? "visual-only" : r.visual === 0 ? "text-only" : `${r.visual}:${r.text}`

/** The short reason of an abort for a chart label: `OOM`, `NaN loss`, `device lost`, else `aborted`. */
export const abortShort = (reason: string): string =>
  /out[- ]of[- ]memory|\boom\b/i.test(reason)
    ? "OOM"
    : /nan/i.test(reason)
      ? "NaN loss"
      : /device[- ]lost/i.test(reason)
        ? "device lost"
        : "aborted"
