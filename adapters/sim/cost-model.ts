/**
 * The sim's cost and memory model: pure, roofline-style, per modality.
 *
 * One forward + backward step of modality m with batch B on hardware h:
 *   compute  = (fixedFlops_m + flopsPerSample_m * B) / (peakFlops * efficiency)
 *   traffic  = (2 * params + 2 * grads + 2 * activationBytesPerSample_m * B) / (bandwidth * efficiency)
 *              (weights read in forward and backward, gradients read-modify-written, activations
 *              written in forward and read back in backward)
 *   step     = max(compute, traffic) + kernelsPerStep_m * kernelOverhead
 *   update   = (2 * params + grads + 2 * optimizerState) / (bandwidth * efficiency)
 *              + updateKernels * kernelOverhead            (only on steps with `update: true`)
 *   switch   = switchUs_m                                  (only when the previous step was the other modality)
 * Memory of the step (its working set; the sim has no allocator pool, so peak = logical = device):
 *   resident = params + grads + optimizerState             (constant for the whole run)
 *   step     = resident + activationBytesPerSample_m * B   (rises on visual steps, falls on text steps)
 * A step whose working set exceeds memoryBytes fails out-of-memory.
 */
import type { Modality } from "../../core/schedule/index.ts"
import type { HardwareProfile, ModelProfile } from "./profiles.ts"

export interface ModalityCosts {
  readonly modality: Modality
  readonly batch: number
  /** Roofline parts of a step, ms (for reports and tests). */
  readonly computeMs: number
  readonly trafficMs: number
  readonly overheadMs: number
  /** max(compute, traffic) + overhead: a step without update and without switch. */
  readonly stepMs: number
  /** Added on steps that apply an optimizer update. */
  readonly updateMs: number
  /** Added on the first step after a switch from the other modality. */
  readonly switchMs: number
  readonly residentBytes: number
  readonly activationBytes: number
  /** resident + activations: the step's peak. */
  readonly stepBytes: number
  readonly fits: boolean
}

export const gradientBytes = (model: ModelProfile): number => model.gradientBytes ?? model.parameterBytes

export const residentBytes = (model: ModelProfile): number =>
  model.parameterBytes + gradientBytes(model) + model.optimizerStateBytes

export const modalityCosts = (
  hardware: HardwareProfile,
  model: ModelProfile,
  modality: Modality,
  batch: number,
): ModalityCosts => {
  const m = model.modalities[modality]
  const flopRate = hardware.peakFlops * hardware.efficiency
  const byteRate = hardware.memoryBandwidth * hardware.efficiency
  const overheadS = hardware.kernelOverheadUs * 1e-6
  const grads = gradientBytes(model)
  const activationBytes = m.activationBytesPerSample * batch

  const computeS = (m.fixedFlops + m.flopsPerSample * batch) / flopRate
  const trafficS = (2 * model.parameterBytes + 2 * grads + 2 * activationBytes) / byteRate
  const stepS = Math.max(computeS, trafficS) + m.kernelsPerStep * overheadS
  const updateS =
    (2 * model.parameterBytes + grads + 2 * model.optimizerStateBytes) / byteRate +
    model.updateKernels * overheadS

  const resident = residentBytes(model)
  const stepBytes = resident + activationBytes
  return {
    modality,
    batch,
    computeMs: computeS * 1e3,
    trafficMs: trafficS * 1e3,
    overheadMs: m.kernelsPerStep * overheadS * 1e3,
    stepMs: stepS * 1e3,
    updateMs: updateS * 1e3,
    switchMs: m.switchUs * 1e-3,
    residentBytes: resident,
    activationBytes,
    stepBytes,
    fits: stepBytes <= hardware.memoryBytes,
  }
}

/** Simulated duration of one step, ms. */
export const stepDurationMs = (costs: ModalityCosts, update: boolean, switched: boolean): number =>
  costs.stepMs + (update ? costs.updateMs : 0) + (switched ? costs.switchMs : 0)
