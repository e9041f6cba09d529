/**
 * The sim's cost and memory model: pure, per modality, linear in the batch for time.
 * docs/sim-profiles.md is the reference for every term and its unit; in short, for a step of
 * modality m with batch B on hardware h:
 *
 * Time (ms), from the physical profile (roofline applied per term):
 *   fixed      = max(fixedFlops / R, (2 W + G_m + 2 fixedActivation) / BW) + kernelsPerStep * k + hostUsPerStep
 *   perSample  = max(flopsPerSample / R, 2 activationPerSample / BW) + hostUsPerSample
 *   step       = fixed + perSample * B
 *   update     = N_m (2 w + g + 2 s) / BW + updateKernels * k        (only on steps that update)
 *   switch     = switchUs                                            (only after the other modality)
 *   with R = peakFlops * efficiency * flopEfficiency, BW = memoryBandwidth * efficiency,
 *   k = kernelOverheadUs, N_m the parameters of the branches m trains, w / g / s bytes per
 *   parameter of weights / gradients / optimizer state, W = w * all parameters.
 * Memory (bytes):
 *   resident   = W + O, O = s * parameters of every trained branch   (weights + optimizer state)
 *   peak_m     = resident + G_m + fixedActivation + activationPerSample * B + activationPerSample2 * B^2
 *   allocated  = resident (+ G_m after a micro-step whose gradient waits for the rest of its group)
 *   reserved   = max of peak over the modalities run so far          (caching allocators only)
 *   G_m = g * N_m: gradients exist only for the branches the step trains.
 * A step whose in-step peak exceeds memoryBytes fails out-of-memory.
 *
 * A calibrated model profile (calibration.status "calibrated") whose calibration names this
 * hardware replaces these with its fitted terms (time per modality; one memory figure).
 */
import type { Modality } from "../../core/schedule/index.ts"
import type {
  Calibrated,
  HardwareProfile,
  MemoryFigureName,
  MemoryTerms,
  ModelProfile,
  TimeTerms,
} from "./profiles.ts"

export const MODALITY_LIST: ReadonlyArray<Modality> = ["visual", "text"]

/** Bytes that stay on the device for the whole run. */
export interface ResidentBytes {
  readonly weights: number
  readonly optimizer: number
  /** weights + optimizer */
  readonly total: number
}

/** The terms of one modality, before any batch is chosen: the fit's priors and the sim's physics. */
export interface LinearTerms {
  readonly time: TimeTerms
  /** The in-step peak: fixedBytes includes resident, gradients and fixed activations. */
  readonly peak: MemoryTerms
  readonly gradientBytes: number
  /** Roofline parts, ms, for reports and tests. */
  readonly parts: {
    readonly computeFixedMs: number
    readonly trafficFixedMs: number
    readonly computePerSampleMs: number
    readonly trafficPerSampleMs: number
    readonly kernelMs: number
    readonly hostFixedMs: number
    readonly hostPerSampleMs: number
  }
}

const sumOf = (xs: Iterable<number>): number => {
  let s = 0
  for (const x of xs) s += x
  return s
}

const gradientBytesPerParameter = (model: ModelProfile): number =>
  model.gradientBytesPerParameter ?? model.bytesPerParameter

/** Parameters of the branches a modality trains. */
export const trainedParameters = (model: ModelProfile, m: Modality): number =>
  sumOf([...new Set(model.modalities[m].trains)].map((b) => model.parameters[b] ?? 0))

export const residentBytes = (model: ModelProfile): ResidentBytes => {
  const trained = new Set([...model.modalities.visual.trains, ...model.modalities.text.trains])
  const weights = model.bytesPerParameter * sumOf(Object.values(model.parameters))
  const optimizer =
    model.optimizerBytesPerParameter * sumOf([...trained].map((b) => model.parameters[b] ?? 0))
  return { weights, optimizer, total: weights + optimizer }
}

/** The physical model's linear terms of modality m on hardware h (see the module comment). */
export const physicalTerms = (hardware: HardwareProfile, model: ModelProfile, m: Modality): LinearTerms => {
  const p = model.modalities[m]
  const flopRate = hardware.peakFlops * hardware.efficiency * model.flopEfficiency
  const byteRate = hardware.memoryBandwidth * hardware.efficiency
  const kUs = hardware.kernelOverheadUs
  const resident = residentBytes(model)
  const n = trainedParameters(model, m)
  const grads = gradientBytesPerParameter(model) * n
  const computeFixedMs = (p.fixedFlops / flopRate) * 1e3
  const trafficFixedMs = ((2 * resident.weights + grads + 2 * p.fixedActivationBytes) / byteRate) * 1e3
  const computePerSampleMs = (p.flopsPerSample / flopRate) * 1e3
  const trafficPerSampleMs = ((2 * p.activationBytesPerSample) / byteRate) * 1e3
  const kernelMs = p.kernelsPerStep * kUs * 1e-3
  const hostFixedMs = p.hostUsPerStep * 1e-3
  const hostPerSampleMs = p.hostUsPerSample * 1e-3
  const updateBytes =
    n *
    (2 * model.bytesPerParameter + gradientBytesPerParameter(model) + 2 * model.optimizerBytesPerParameter)
  return {
    time: {
      fixedMs: Math.max(computeFixedMs, trafficFixedMs) + kernelMs + hostFixedMs,
      perSampleMs: Math.max(computePerSampleMs, trafficPerSampleMs) + hostPerSampleMs,
      updateMs: (updateBytes / byteRate) * 1e3 + p.updateKernels * kUs * 1e-3,
      switchMs: p.switchUs * 1e-3,
    },
    peak: {
      fixedBytes: resident.total + grads + p.fixedActivationBytes,
      perSampleBytes: p.activationBytesPerSample,
      perSampleSquaredBytes: p.activationBytesPerSampleSquared,
    },
    gradientBytes: grads,
    parts: {
      computeFixedMs,
      trafficFixedMs,
      computePerSampleMs,
      trafficPerSampleMs,
      kernelMs,
      hostFixedMs,
      hostPerSampleMs,
    },
  }
}

export const memoryAt = (t: MemoryTerms, batch: number): number =>
  t.fixedBytes + t.perSampleBytes * batch + t.perSampleSquaredBytes * batch * batch

/** The calibration that holds on this hardware, if any. */
export const calibrationFor = (hardware: HardwareProfile, model: ModelProfile): Calibrated | undefined => {
  const c = model.calibration
  return c !== undefined && c.status === "calibrated" && c.hardware === hardware.name ? c : undefined
}

/** Memory figures whose value holds a high-water mark across steps rather than the step's own. */
export const HIGH_WATER_FIGURES: ReadonlyArray<MemoryFigureName> = [
  "reservedBytes",
  "rssBytes",
  "deviceBytes",
]

export interface ModalityCosts {
  readonly modality: Modality
  readonly batch: number
  /** The time terms in use (fitted when `timeCalibrated`). */
  readonly time: TimeTerms
  readonly timeCalibrated: boolean
  /** fixedMs + perSampleMs * batch: a step without update and without switch. */
  readonly stepMs: number
  readonly updateMs: number
  readonly switchMs: number
  /** The physical model's memory of the step (always computed; reported unless calibrated). */
  readonly resident: ResidentBytes
  readonly gradientBytes: number
  readonly activationBytes: number
  readonly peakBytes: number
  /** Calibrated memory: the figure fitted and its value for this step (high-water figures: before the max over steps). */
  readonly calibratedMemory: { readonly figure: MemoryFigureName; readonly bytes: number } | undefined
  /** The bytes the out-of-memory check uses: the calibrated figure, else the physical in-step peak. */
  readonly limitBytes: number
  readonly fits: boolean
}

export const modalityCosts = (
  hardware: HardwareProfile,
  model: ModelProfile,
  modality: Modality,
  batch: number,
): ModalityCosts => {
  const phys = physicalTerms(hardware, model, modality)
  const cal = calibrationFor(hardware, model)
  const time = cal?.time[modality] ?? phys.time
  const memTerms = cal?.memory?.[modality]
  const calibratedMemory =
    cal?.memory !== undefined && memTerms !== undefined
      ? { figure: cal.memory.figure, bytes: Math.round(memoryAt(memTerms, batch)) }
      : undefined
  const peakBytes = memoryAt(phys.peak, batch)
  const limitBytes = calibratedMemory?.bytes ?? peakBytes
  return {
    modality,
    batch,
    time,
    timeCalibrated: cal?.time[modality] !== undefined,
    stepMs: time.fixedMs + time.perSampleMs * batch,
    updateMs: time.updateMs,
    switchMs: time.switchMs,
    resident: residentBytes(model),
    gradientBytes: phys.gradientBytes,
    activationBytes: peakBytes - phys.peak.fixedBytes + model.modalities[modality].fixedActivationBytes,
    peakBytes,
    calibratedMemory,
    limitBytes,
    fits: limitBytes <= hardware.memoryBytes,
  }
}

/** Simulated duration of one step, ms. */
export const stepDurationMs = (costs: ModalityCosts, update: boolean, switched: boolean): number =>
  costs.stepMs + (update ? costs.updateMs : 0) + (switched ? costs.switchMs : 0)
