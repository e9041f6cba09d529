/**
 * Seeded synthetic detection data for the T-Rex2-like model: coloured shapes on a dark background,
 * each class named in words ("red circle"). No downloads, no loader state.
 *
 * Every image is a pure function of (seed, stream, index, slot), so the batch of any step can be
 * rebuilt on its own: resume and replay need nothing but the step index. Images are cheap to draw
 * (a 32x32 image is ~3k pixel tests), so there is no pool to precompute.
 *
 * Layout: the image is split into a 2x2 grid of cells; OBJECTS_PER_IMAGE of the four cells hold
 * one object each, all of distinct classes. Same colour or same shape distractors are common, so
 * a prompt must match both words (text) or both appearance cues (visual) to find its object.
 */
import { fmix32 } from "../../core/common/index.ts"
import type { Modality } from "../../core/schedule/index.ts"

export const COLOURS = ["red", "green", "blue", "yellow"] as const
export const SHAPES = ["circle", "square", "triangle", "cross"] as const
export const NUM_CLASSES = COLOURS.length * SHAPES.length
export const OBJECTS_PER_IMAGE = 3

const RGB: ReadonlyArray<readonly [number, number, number]> = [
  [0.9, 0.15, 0.15],
  [0.15, 0.8, 0.2],
  [0.2, 0.3, 0.95],
  [0.9, 0.85, 0.15],
]

/** Class id = colour * |SHAPES| + shape. */
export const className = (cls: number): string =>
  `${COLOURS[Math.floor(cls / SHAPES.length)]} ${SHAPES[cls % SHAPES.length]}`

/** Word vocabulary of the text encoder: colours then shapes. */
export const VOCAB: ReadonlyArray<string> = [...COLOURS, ...SHAPES]
export const TOKENS_PER_NAME = 2

/** Tokenises a class name ("red circle" -> [0, 4]) through the vocabulary, word by word. */
export const tokenize = (name: string): number[] =>
  name.split(" ").map((w) => {
    const i = VOCAB.indexOf(w)
    if (i < 0) throw new Error(`word "${w}" is not in the vocabulary`)
    return i
  })

/** [x1, y1, x2, y2], normalised to [0, 1]. */
export type Box = readonly [number, number, number, number]

export interface Instance {
  readonly cls: number
  readonly box: Box
}

export interface ImageGeometry {
  /** Side of the square image in pixels. */
  readonly imageSize: number
  /** Side of a square patch in pixels; imageSize must be a multiple. */
  readonly patchSize: number
}

export interface Sample {
  /** Row-major HxWx3, values normalised around 0. */
  readonly pixels: Float32Array
  readonly instances: ReadonlyArray<Instance>
}

// ---- seeded randomness -------------------------------------------------------------------------

export const hashOf = (...parts: ReadonlyArray<number>): number => {
  let h = 0x9e3779b9
  for (const p of parts) h = fmix32(h ^ fmix32((p >>> 0) + 0x632be5ab))
  return h
}

/** Small, fast PRNG (mulberry32) returning floats in [0, 1). */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// ---- drawing -----------------------------------------------------------------------------------

/** Whether the point (u, v), in box-relative coordinates [0, 1], lies on the shape. */
const onShape = (shape: number, u: number, v: number): boolean => {
  const du = u - 0.5
  const dv = v - 0.5
  switch (shape) {
    case 0:
      return du * du + dv * dv <= 0.25
    case 1:
      return true
    case 2:
      return v >= Math.abs(du) * 2
    default:
      return Math.abs(du) < 0.17 || Math.abs(dv) < 0.17
  }
}

const STREAMS: Record<Modality | "val", number> = { visual: 1, text: 2, val: 3 }

/** Draws one image from its own random stream. */
export const drawSample = (geo: ImageGeometry, rand: () => number): Sample => {
  const s = geo.imageSize
  const cell = s / 2
  const pixels = new Float32Array(s * s * 3)
  for (let i = 0; i < pixels.length; i++) pixels[i] = 0.08 + 0.08 * rand()

  // OBJECTS_PER_IMAGE distinct cells and distinct classes, by partial Fisher-Yates.
  const cells = [0, 1, 2, 3]
  const classes = Array.from({ length: NUM_CLASSES }, (_, i) => i)
  const instances: Instance[] = []
  for (let k = 0; k < OBJECTS_PER_IMAGE; k++) {
    const ci = k + Math.floor(rand() * (cells.length - k))
    ;[cells[k], cells[ci]] = [cells[ci]!, cells[k]!]
    const ki = k + Math.floor(rand() * (classes.length - k))
    ;[classes[k], classes[ki]] = [classes[ki]!, classes[k]!]
    const cls = classes[k]!
    const colour = Math.floor(cls / SHAPES.length)
    const shape = cls % SHAPES.length
    const w = Math.round(cell * (0.55 + 0.4 * rand()))
    const h = Math.round(cell * (0.55 + 0.4 * rand()))
    const cx0 = (cells[k]! % 2) * cell
    const cy0 = Math.floor(cells[k]! / 2) * cell
    const x0 = cx0 + Math.floor(rand() * (cell - w + 1))
    const y0 = cy0 + Math.floor(rand() * (cell - h + 1))
    const jitter = RGB[colour]!.map((c) => Math.min(1, Math.max(0, c + (rand() - 0.5) * 0.16)))
    for (let y = y0; y < y0 + h; y++)
      for (let x = x0; x < x0 + w; x++) {
        if (!onShape(shape, (x - x0 + 0.5) / w, (y - y0 + 0.5) / h)) continue
        const o = (y * s + x) * 3
        pixels[o] = jitter[0]!
        pixels[o + 1] = jitter[1]!
        pixels[o + 2] = jitter[2]!
      }
    instances.push({ cls, box: [x0 / s, y0 / s, (x0 + w) / s, (y0 + h) / s] })
  }
  for (let i = 0; i < pixels.length; i++) pixels[i] = (pixels[i]! - 0.35) / 0.35
  return { pixels, instances }
}

/** Image `slot` of the batch at `index` in a stream: a pure function of its arguments. */
export const sampleAt = (
  geo: ImageGeometry,
  seed: number,
  stream: Modality | "val",
  index: number,
  slot: number,
): Sample => drawSample(geo, mulberry32(hashOf(seed, STREAMS[stream], index, slot)))

// ---- model-ready batches -----------------------------------------------------------------------

export const patchesPerImage = (geo: ImageGeometry): number => (geo.imageSize / geo.patchSize) ** 2
export const patchDim = (geo: ImageGeometry): number => geo.patchSize * geo.patchSize * 3

/** Centre of patch n in normalised coordinates (row-major patches). */
export const patchCentre = (geo: ImageGeometry, n: number): readonly [number, number] => {
  const g = geo.imageSize / geo.patchSize
  return [((n % g) + 0.5) / g, (Math.floor(n / g) + 0.5) / g]
}

const inside = (box: Box, x: number, y: number): boolean =>
  x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3]

/** Patch rows [B*N, patchSize*patchSize*3]: the reshape half of the patch embedding, done in JS. */
export const patchify = (geo: ImageGeometry, samples: ReadonlyArray<Sample>): Float32Array => {
  const s = geo.imageSize
  const p = geo.patchSize
  const g = s / p
  const pd = patchDim(geo)
  const n = g * g
  const out = new Float32Array(samples.length * n * pd)
  samples.forEach((smp, b) => {
    for (let py = 0; py < g; py++)
      for (let px = 0; px < g; px++) {
        let o = (b * n + py * g + px) * pd
        for (let y = 0; y < p; y++) {
          const row = ((py * p + y) * s + px * p) * 3
          for (let i = 0; i < p * 3; i++) out[o++] = smp.pixels[row + i]!
        }
      }
  })
  return out
}

/** Box as (cx, cy, w, h), the regression target. */
export const toCxcywh = (b: Box): [number, number, number, number] => [
  (b[0] + b[2]) / 2,
  (b[1] + b[3]) / 2,
  b[2] - b[0],
  b[3] - b[1],
]

export const iou = (a: Box, b: Box): number => {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]))
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]))
  const inter = iw * ih
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return union > 0 ? inter / union : 0
}

/** Sine-cosine embedding of a box: each coordinate at `freqs` octaves. Length 8 * freqs. */
export const boxEmbedding = (box: Box, freqs: number): number[] => {
  const out: number[] = []
  for (const c of box)
    for (let f = 0; f < freqs; f++) {
      const a = c * Math.PI * 2 ** f
      out.push(Math.sin(a), Math.cos(a))
    }
  return out
}

/** What both loaders share: images, per-patch box targets, and the instances. */
export interface ImageBatch {
  readonly size: number
  readonly samples: ReadonlyArray<Sample>
  /** [B*N, patchDim] */
  readonly patches: Float32Array
  /** [B*N, 4] (cx, cy, w, h) of the object whose box holds the patch centre; 0 elsewhere. */
  readonly boxTargets: Float32Array
  /** [B*N, 1]: 1 where a patch centre lies in an object box. */
  readonly boxMask: Float32Array
  /** [B*N]: class of the object covering the patch centre, -1 for background. */
  readonly patchClass: Int32Array
}

export const makeImageBatch = (geo: ImageGeometry, samples: ReadonlyArray<Sample>): ImageBatch => {
  const n = patchesPerImage(geo)
  const boxTargets = new Float32Array(samples.length * n * 4)
  const boxMask = new Float32Array(samples.length * n)
  const patchClass = new Int32Array(samples.length * n).fill(-1)
  samples.forEach((smp, b) => {
    for (let p = 0; p < n; p++) {
      const [x, y] = patchCentre(geo, p)
      const hit = smp.instances.find((inst) => inside(inst.box, x, y))
      if (!hit) continue
      const r = b * n + p
      boxTargets.set(toCxcywh(hit.box), r * 4)
      boxMask[r] = 1
      patchClass[r] = hit.cls
    }
  })
  return { size: samples.length, samples, patches: patchify(geo, samples), boxTargets, boxMask, patchClass }
}

/** [P, B*N] classification targets: 1 where the patch belongs to the prompt's class. */
export const scoreTargets = (promptClass: ReadonlyArray<number>, patchClass: Int32Array): Float32Array => {
  const m = patchClass.length
  const out = new Float32Array(promptClass.length * m)
  promptClass.forEach((c, k) => {
    for (let r = 0; r < m; r++) if (patchClass[r] === c) out[k * m + r] = 1
  })
  return out
}

/** Text-prompt batch: every class name is a prompt, so absent classes are the negatives. */
export interface TextBatch extends ImageBatch {
  readonly modality: "text"
  /** [C] class of each prompt. */
  readonly promptClass: ReadonlyArray<number>
  /** [C * TOKENS_PER_NAME] token ids. */
  readonly tokens: Int32Array
  /** [C, B*N] */
  readonly targets: Float32Array
}

/**
 * Visual-prompt batch: each object's box is a prompt drawn on its own image; its prompt embedding
 * is scored against every image of the batch, so other images' objects of other classes (and
 * images without the class) are the negatives, and same-class objects in other images the
 * cross-image positives.
 */
export interface VisualBatch extends ImageBatch {
  readonly modality: "visual"
  /** [B*K] class of each prompt; prompt k comes from image floor(k / K). */
  readonly promptClass: ReadonlyArray<number>
  /** [B*K, 8*freqs] sine-cosine embeddings of the prompt boxes. */
  readonly boxEmbeddings: Float32Array
  /** [B, K, N] attention bias: 0 on patches whose centre is in the prompt box, -1e4 elsewhere. */
  readonly boxBias: Float32Array
  /** [B*K, B*N] */
  readonly targets: Float32Array
}

export const ALL_CLASSES: ReadonlyArray<number> = Array.from({ length: NUM_CLASSES }, (_, i) => i)

export const classTokens = (classes: ReadonlyArray<number>): Int32Array =>
  Int32Array.from(classes.flatMap((c) => tokenize(className(c))))

export const makeTextBatch = (geo: ImageGeometry, samples: ReadonlyArray<Sample>): TextBatch => {
  const images = makeImageBatch(geo, samples)
  return {
    ...images,
    modality: "text",
    promptClass: ALL_CLASSES,
    tokens: classTokens(ALL_CLASSES),
    targets: scoreTargets(ALL_CLASSES, images.patchClass),
  }
}

/** Box-restricted attention bias of prompts drawn on their own images. */
export const boxBiasFor = (geo: ImageGeometry, boxes: ReadonlyArray<Box>): Float32Array => {
  const n = patchesPerImage(geo)
  const out = new Float32Array(boxes.length * n)
  boxes.forEach((box, k) => {
    for (let p = 0; p < n; p++) {
      const [x, y] = patchCentre(geo, p)
      out[k * n + p] = inside(box, x, y) ? 0 : -1e4
    }
  })
  return out
}

export const makeVisualBatch = (
  geo: ImageGeometry,
  samples: ReadonlyArray<Sample>,
  boxFreqs: number,
): VisualBatch => {
  const images = makeImageBatch(geo, samples)
  const prompts = samples.flatMap((s) => s.instances)
  return {
    ...images,
    modality: "visual",
    promptClass: prompts.map((p) => p.cls),
    boxEmbeddings: Float32Array.from(prompts.flatMap((p) => boxEmbedding(p.box, boxFreqs))),
    boxBias: boxBiasFor(
      geo,
      prompts.map((p) => p.box),
    ),
    targets: scoreTargets(
      prompts.map((p) => p.cls),
      images.patchClass,
    ),
  }
}

/** The two loaders: the batch of a step is a pure function of (seed, modality, step, size). */
export const textBatchAt = (geo: ImageGeometry, seed: number, step: number, size: number): TextBatch =>
  makeTextBatch(
    geo,
    Array.from({ length: size }, (_, j) => sampleAt(geo, seed, "text", step, j)),
  )

export const visualBatchAt = (
  geo: ImageGeometry,
  seed: number,
  step: number,
  size: number,
  boxFreqs: number,
): VisualBatch =>
  makeVisualBatch(
    geo,
    Array.from({ length: size }, (_, j) => sampleAt(geo, seed, "visual", step, j)),
    boxFreqs,
  )

/** Held-out images: their own stream, never drawn by a training loader. */
export const validationSet = (geo: ImageGeometry, seed: number, count: number): ReadonlyArray<Sample> =>
  Array.from({ length: count }, (_, j) => sampleAt(geo, seed, "val", 0, j))

/**
 * Cross-image visual evaluation pairs: for each object of each held-out image, an exemplar of the
 * same class from the next other held-out image that has one (the prompt is never drawn on the
 * image it is tested on, so the test is appearance matching, not finding the drawn box).
 */
export interface VisualPair {
  readonly target: number
  readonly cls: number
  /** Index of the exemplar prompt in the flattened (image, instance) list. */
  readonly exemplar: number
}

export const visualPairs = (samples: ReadonlyArray<Sample>): VisualPair[] => {
  const out: VisualPair[] = []
  const k = OBJECTS_PER_IMAGE
  samples.forEach((s, i) => {
    for (const inst of s.instances) {
      for (let d = 1; d < samples.length; d++) {
        const j = (i + d) % samples.length
        const at = samples[j]!.instances.findIndex((o) => o.cls === inst.cls)
        if (at >= 0) {
          out.push({ target: i, cls: inst.cls, exemplar: j * k + at })
          break
        }
      }
    }
  })
  return out
}
