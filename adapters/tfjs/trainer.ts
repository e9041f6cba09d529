/**
 * The training loop body of the tfjs adapter, free of Effect: one micro-step, evaluation,
 * checkpoint and restore over a model, an optimizer and the two loaders.
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises"
import * as tf from "@tensorflow/tfjs-core"
import { Either, Schema } from "effect"
import { firstIssue, issueText, NonNegInt, oneOf } from "../../core/common/index.ts"
import {
  expectedVisualSteps,
  type Modality,
  type ScheduleSpec,
  type StepPlan,
} from "../../core/schedule/index.ts"
import {
  ALL_CLASSES,
  boxBiasFor,
  boxEmbedding,
  classTokens,
  iou,
  makeImageBatch,
  OBJECTS_PER_IMAGE,
  patchCentre,
  patchesPerImage,
  type Sample,
  textBatchAt,
  validationSet,
  visualBatchAt,
  visualPairs,
} from "./data.ts"
import {
  alignmentLoss,
  BOX_WEIGHT,
  boxAnchors,
  boxL1,
  classOneHot,
  createModel,
  encodeImages,
  encodeText,
  encodeVisual,
  focalLoss,
  type Model,
  oneHotTokens,
  predictBoxes,
  scorePrompts,
} from "./model.ts"
import { makeOptimizer, type OptimizerSnapshot, type TrainOptimizer } from "./optimizer.ts"
import { assignGroups, type ModuleName } from "./param-groups.ts"
import type { ModelPreset } from "./presets.ts"

/** A non-finite loss: the update is not applied. */
export class NonFiniteLoss extends Error {
  override readonly name = "NonFiniteLoss"
}

/** A checkpoint file that cannot be restored here; the message names the file and why. */
export class CheckpointError extends Error {
  override readonly name = "CheckpointError"
}

/**
 * Alignment is legitimate once the text branch has been trained: in a visual step that comes after
 * at least one text step of the schedule. A pure function of (spec, plan), so resume needs no
 * state. A visual-only run therefore never aligns to an untrained text encoder, and its text
 * prompts stay at chance.
 */
export const textStepsBefore = (spec: ScheduleSpec, plan: Pick<StepPlan, "phase" | "phaseStep">): number => {
  let n = 0
  for (const p of spec.phases) {
    if (p.name === plan.phase)
      return n + plan.phaseStep - expectedVisualSteps({ ...p, steps: plan.phaseStep })
    n += p.steps - expectedVisualSteps(p)
  }
  throw new Error(`phase "${plan.phase}" is not in the spec`)
}

export interface StepResult {
  readonly losses: Record<string, number>
  readonly samples: number
}

export interface EvalValues {
  readonly values: Record<Modality, number>
  readonly chance: number
  /** Fraction of prompts whose top patch lies on an object of the prompted class (box ignored). */
  readonly located: Record<Modality, number>
  readonly prompts: Record<Modality, number>
}

const EVAL_CHUNK = 32

export interface Trainer {
  readonly model: Model
  readonly optimizer: TrainOptimizer
  readonly groups: Record<ModuleName, string>
  readonly step: (plan: StepPlan) => Promise<StepResult>
  readonly evaluate: () => Promise<EvalValues>
  readonly checkpoint: (file: string) => Promise<void>
  readonly restore: (file: string) => Promise<void>
  readonly dispose: () => void
}

export const CHECKPOINT_FORMAT = "interleave-tfjs-checkpoint/1"

/** Float32 values as base64 text (little-endian, as the typed array holds them). */
const Base64 = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9+/]*={0,2}$/, { message: () => "must be base64 text" }),
)

/** The checkpoint file: JSON, float32 arrays as base64. `format` is checked before this. */
const CheckpointSchema = Schema.Struct({
  format: Schema.Literal(CHECKPOINT_FORMAT),
  preset: Schema.String,
  seed: Schema.Int,
  params: Schema.Array(Schema.Struct({ name: Schema.String, shape: Schema.Array(NonNegInt), data: Base64 })),
  optimizer: Schema.Struct({
    kind: oneOf("adamw", "adam", "sgd"),
    accumulated: NonNegInt,
    buckets: Schema.Array(
      Schema.Struct({
        key: Schema.String,
        params: Schema.Array(Schema.String),
        t: NonNegInt,
        m: Schema.optional(Base64),
        v: Schema.optional(Base64),
        buf: Schema.optional(Base64),
        acc: Schema.optional(Base64),
      }),
    ),
  }),
})
type CheckpointDoc = typeof CheckpointSchema.Type
const decodeCheckpoint = Schema.decodeUnknownEither(CheckpointSchema, { onExcessProperty: "error" })

const b64 = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64")
/** Decodes base64 float32s; undefined when the byte count is not a whole number of floats. */
const unb64 = (s: string): Float32Array | undefined => {
  const buf = Buffer.from(s, "base64")
  if (buf.byteLength % 4 !== 0) return undefined
  const out = new Float32Array(buf.byteLength / 4)
  new Uint8Array(out.buffer).set(buf)
  return out
}

const scaleLrs = (lr: Readonly<Record<string, number>>, k: number): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const g in lr) out[g] = lr[g]! * k
  return out
}

export interface TrainerOptions {
  /** Held-out images for `evaluate`. */
  readonly validationImages: number
  /** Factor on every lr of the plan (default 1). */
  readonly lrScale?: number
  /** Weight of the alignment loss (default 1); 0 leaves it out of the step entirely. */
  readonly alignWeight?: number
}

export const makeTrainer = (spec: ScheduleSpec, preset: ModelPreset, opts: TrainerOptions): Trainer => {
  const { validationImages, lrScale = 1, alignWeight = 1 } = opts
  const model = createModel(preset, spec.seed)
  const groups = assignGroups(spec.optimizer.groups.map((g) => g.name))
  const decayOf = new Map(
    spec.optimizer.groups.map((g) => [g.name, g.weightDecay ?? spec.optimizer.weightDecay]),
  )
  const optimizer = makeOptimizer(
    spec.optimizer,
    model.params.map((param) => ({
      param,
      group: groups[param.module],
      weightDecay: decayOf.get(groups[param.module]) ?? 0,
    })),
  )
  // Each modality trains only the modules on its path; the other prompt encoder gets no gradient.
  const varsFor: Record<Modality, tf.Variable[]> = {
    visual: model.params.filter((p) => p.module !== "text-encoder").map((p) => p.variable),
    text: model.params.filter((p) => p.module !== "visual-encoder").map((p) => p.variable),
  }
  const allTokens = tf.keep(oneHotTokens(classTokens(ALL_CLASSES)))
  const headBias = model.params.find((p) => p.name === "head/bias")!.variable

  const step = async (plan: StepPlan): Promise<StepResult> => {
    const size = spec.batch[plan.modality].size
    const align = plan.modality === "visual" && alignWeight > 0 && textStepsBefore(spec, plan) > 0
    const batch =
      plan.modality === "visual"
        ? visualBatchAt(preset, spec.seed, plan.step, size, preset.boxFreqs)
        : textBatchAt(preset, spec.seed, plan.step, size)
    const n = patchesPerImage(preset)
    const inputs = tf.tidy(() => ({
      patches: tf.tensor(batch.patches, [size * n, batch.patches.length / (size * n)]),
      boxTargets: tf.tensor(batch.boxTargets, [size * n, 4]),
      boxMask: tf.tensor(batch.boxMask, [size * n, 1]),
      targets: tf.tensor(batch.targets, [batch.promptClass.length, size * n]),
      anchors: boxAnchors(model, size),
      // Stop-gradient: the text embeddings are computed outside the tape, as constants.
      textConst: align ? encodeText(model, allTokens) : undefined,
      classes: align ? classOneHot(batch.promptClass) : undefined,
      boxEmb:
        batch.modality === "visual"
          ? tf.tensor(batch.boxEmbeddings, [batch.promptClass.length, 8 * preset.boxFreqs])
          : undefined,
      boxBias:
        batch.modality === "visual"
          ? tf.tensor(batch.boxBias, [size, batch.promptClass.length / size, n])
          : undefined,
    }))
    const positives = batch.targets.reduce((a, b) => a + b, 0)
    const masked = batch.boxMask.reduce((a, b) => a + b, 0)
    const parts: Record<string, tf.Tensor> = {}
    let value: tf.Scalar | undefined
    let grads: tf.NamedTensorMap = {}
    try {
      const out = tf.variableGrads(() => {
        const feats = encodeImages(model, inputs.patches, size)
        const prompts =
          plan.modality === "visual"
            ? encodeVisual(model, feats, inputs.boxEmb!, inputs.boxBias!)
            : encodeText(model, allTokens)
        const cls = focalLoss(scorePrompts(model, prompts, feats), inputs.targets, positives)
        const box = boxL1(
          predictBoxes(model, feats, inputs.anchors),
          inputs.boxTargets,
          inputs.boxMask,
          masked,
        )
        let total = tf.add(cls, tf.mul(box, BOX_WEIGHT))
        parts.cls = tf.keep(cls)
        parts.box = tf.keep(box)
        if (align) {
          const a = alignmentLoss(prompts, inputs.textConst!, inputs.classes!)
          parts.align = tf.keep(a)
          total = tf.add(total, tf.mul(a, alignWeight))
        }
        return total as tf.Scalar
      }, varsFor[plan.modality])
      value = out.value
      grads = out.grads
      const names = Object.keys(parts)
      const packed = tf.stack([...names.map((k) => parts[k]!), value])
      const read = await packed.data<"float32">()
      packed.dispose()
      const losses: Record<string, number> = {}
      names.forEach((k, i) => {
        losses[k] = read[i]!
      })
      losses.total = read[names.length]!
      if (!Object.values(losses).every(Number.isFinite))
        throw new NonFiniteLoss(
          `non-finite loss at step ${plan.step} (${plan.modality}): ${JSON.stringify(losses)}; update not applied`,
        )
      optimizer.accumulate(grads)
      grads = {}
      if (plan.update) {
        optimizer.apply(lrScale === 1 ? plan.lr : scaleLrs(plan.lr, lrScale))
        // Wait for the update's kernels too, so the step time covers them on async backends.
        await headBias.data()
      }
      return { losses, samples: size }
    } finally {
      for (const g of Object.values(grads)) g.dispose()
      for (const t of Object.values(parts)) t.dispose()
      value?.dispose()
      for (const t of Object.values(inputs)) t?.dispose()
    }
  }

  // Held-out set and its constant inputs, built once.
  const val: ReadonlyArray<Sample> = validationSet(preset, spec.seed ^ 0x5eed, validationImages)
  const pairs = visualPairs(val)

  const evaluate = async (): Promise<EvalValues> => {
    const n = patchesPerImage(preset)
    const k = OBJECTS_PER_IMAGE
    const chunks: Array<{ from: number; samples: ReadonlyArray<Sample> }> = []
    for (let i = 0; i < val.length; i += EVAL_CHUNK)
      chunks.push({ from: i, samples: val.slice(i, i + EVAL_CHUNK) })
    // Every tensor made here, whatever path evaluate leaves by (disposing twice is a no-op).
    const owned: tf.Tensor[] = []
    const own = <T extends tf.Tensor>(t: T): T => {
      owned.push(t)
      return t
    }
    const feats: tf.Tensor[] = []
    const visualEmb: tf.Tensor[] = []
    const boxes: Float32Array[] = []
    try {
      for (const c of chunks) {
        const imgs = makeImageBatch(preset, c.samples)
        const b = c.samples.length
        const prompts = c.samples.flatMap((s) => s.instances)
        const [f, e, bx] = tf.tidy(() => {
          const f = encodeImages(model, tf.tensor(imgs.patches, [b * n, imgs.patches.length / (b * n)]), b)
          const emb = tf.tensor(
            prompts.flatMap((p) => boxEmbedding(p.box, preset.boxFreqs)),
            [prompts.length, 8 * preset.boxFreqs],
          )
          const bias = tf.tensor(
            boxBiasFor(
              preset,
              prompts.map((p) => p.box),
            ),
            [b, k, n],
          )
          return [f, encodeVisual(model, f, emb, bias), predictBoxes(model, f, boxAnchors(model, b))]
        })
        feats.push(own(f))
        visualEmb.push(own(e))
        boxes.push(new Float32Array(await own(bx).data<"float32">()))
        bx.dispose()
      }
      const allVisual = own(tf.concat(visualEmb))
      const textEmb = own(tf.tidy(() => encodeText(model, allTokens)))
      const hits = { visual: 0, text: 0 }
      const found = { visual: 0, text: 0 }
      const count = { visual: 0, text: 0 }
      for (const [ci, c] of chunks.entries()) {
        const b = c.samples.length
        // Per target image, its K prompts: the text names of its objects, and cross-image exemplars.
        const textIdx = c.samples.flatMap((s) => s.instances.map((o) => o.cls))
        const chunkPairs = pairs.filter((p) => p.target >= c.from && p.target < c.from + b)
        const visIdx = c.samples.flatMap((_, j) => {
          const mine = chunkPairs.filter((p) => p.target === c.from + j).map((p) => p.exemplar)
          while (mine.length < k) mine.push(0)
          return mine
        })
        const best = own(
          tf.tidy(() => {
            const f = tf.reshape(feats[ci]!, [b, n, preset.width])
            const top = (emb: tf.Tensor, idx: number[]) => {
              const q = tf.reshape(tf.gather(emb, tf.tensor1d(idx, "int32")), [b, k, preset.width])
              return tf.argMax(tf.matMul(q, f, false, true), 2)
            }
            return tf.stack([top(textEmb, textIdx), top(allVisual, visIdx)])
          }),
        )
        const arg = await best.data<"int32">()
        best.dispose()
        // Scores one prompt: did its top patch land on the class's object, and is its box good?
        const score = (m: Modality, image: number, slot: number, offset: number, cls: number): void => {
          const patch = arg[offset + slot]!
          const r = (image * n + patch) * 4
          const bx = boxes[ci]!
          const [cx, cy, w, h] = [bx[r]!, bx[r + 1]!, bx[r + 2]!, bx[r + 3]!]
          const pred = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] as const
          const truth = c.samples[image]!.instances.find((o) => o.cls === cls)!
          const [px, py] = patchCentre(preset, patch)
          count[m]++
          if (px >= truth.box[0] && px <= truth.box[2] && py >= truth.box[1] && py <= truth.box[3]) found[m]++
          if (iou(pred, truth.box) >= 0.5) hits[m]++
        }
        for (let j = 0; j < b; j++) {
          c.samples[j]!.instances.forEach((o, s) => {
            score("text", j, j * k + s, 0, o.cls)
          })
          chunkPairs
            .filter((p) => p.target === c.from + j)
            .forEach((p, s) => {
              score("visual", j, j * k + s, b * k, p.cls)
            })
        }
      }
      return {
        values: {
          visual: hits.visual / Math.max(1, count.visual),
          text: hits.text / Math.max(1, count.text),
        },
        located: {
          visual: found.visual / Math.max(1, count.visual),
          text: found.text / Math.max(1, count.text),
        },
        // A prompt-blind detector that boxes one of the image's objects at random.
        chance: 1 / OBJECTS_PER_IMAGE,
        prompts: count,
      }
    } finally {
      for (const t of owned) t.dispose()
    }
  }

  const checkpoint = async (file: string): Promise<void> => {
    const params = []
    for (const p of model.params)
      params.push({
        name: p.name,
        shape: p.variable.shape,
        data: b64(new Float32Array(await p.variable.data())),
      })
    const opt = await optimizer.snapshot()
    const enc = (x: Float32Array | undefined) => (x ? b64(x) : undefined)
    const doc: CheckpointDoc = {
      format: CHECKPOINT_FORMAT,
      preset: preset.name,
      seed: spec.seed,
      params,
      optimizer: {
        kind: opt.kind,
        accumulated: opt.accumulated,
        buckets: opt.buckets.map((x) => ({
          key: x.key,
          params: x.params,
          t: x.t,
          m: enc(x.m),
          v: enc(x.v),
          buf: enc(x.buf),
          acc: enc(x.acc),
        })),
      },
    }
    // Written beside, then renamed: a process killed mid-write leaves no truncated checkpoint.
    const tmp = `${file}.tmp-${process.pid}`
    try {
      await writeFile(tmp, JSON.stringify(doc))
      await rename(tmp, file)
    } catch (e) {
      await rm(tmp, { force: true })
      throw e
    }
  }

  /** Reads and checks a checkpoint completely; nothing in the session changes here. */
  const readCheckpoint = async (file: string) => {
    const bad = (why: string) => new CheckpointError(`checkpoint ${file}: ${why}`)
    let text: string
    try {
      text = await readFile(file, "utf8")
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      throw bad(`cannot be read (${code === "ENOENT" ? "no such file" : (code ?? String(e))})`)
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw bad(`not an ${CHECKPOINT_FORMAT} file: not complete JSON (truncated or corrupt)`)
    }
    const format = (json as { format?: unknown } | null)?.format
    if (typeof json !== "object" || json === null || Array.isArray(json) || format !== CHECKPOINT_FORMAT)
      throw bad(
        `not an ${CHECKPOINT_FORMAT} file${typeof format === "string" ? ` (its format is ${JSON.stringify(format)})` : ""}`,
      )
    const decoded = decodeCheckpoint(json)
    if (Either.isLeft(decoded)) throw bad(`corrupt: ${issueText(firstIssue(decoded.left))}`)
    const doc = decoded.right
    if (doc.seed !== spec.seed)
      throw bad(
        `written with seed ${doc.seed}, this session runs seed ${spec.seed}; a checkpoint only continues the run of its own seed`,
      )
    if (doc.preset !== preset.name)
      throw bad(`written for preset ${doc.preset}, this session runs preset ${preset.name}`)
    const byName = new Map(model.params.map((p) => [p.name, p]))
    const saved = new Set(doc.params.map((p) => p.name))
    const missing = model.params.filter((p) => !saved.has(p.name)).map((p) => p.name)
    const extra = doc.params.filter((p) => !byName.has(p.name)).map((p) => p.name)
    if (missing.length > 0 || extra.length > 0 || doc.params.length !== model.params.length)
      throw bad(
        `its parameters do not match the model (${[
          missing.length > 0 ? `missing ${missing.slice(0, 3).join(", ")}` : "",
          extra.length > 0 ? `unknown ${extra.slice(0, 3).join(", ")}` : "",
          doc.params.length !== model.params.length
            ? `${doc.params.length} saved, ${model.params.length} in the model`
            : "",
        ]
          .filter((x) => x)
          .join("; ")})`,
      )
    const values = doc.params.map((x) => {
      const p = byName.get(x.name)!
      if (p.variable.shape.join("x") !== x.shape.join("x"))
        throw bad(`parameter ${x.name} has shape [${x.shape}], the model's is [${p.variable.shape}]`)
      const data = unb64(x.data)
      if (data?.length !== p.variable.size)
        throw bad(
          `parameter ${x.name} holds ${data ? data.length : "a partial number of"} float32 values, its shape [${x.shape}] needs ${p.variable.size}`,
        )
      return { variable: p.variable, data }
    })
    const dec = (what: string, s: string | undefined) => {
      if (s === undefined) return undefined
      const a = unb64(s)
      if (!a) throw bad(`optimizer ${what} holds a partial number of float32 values`)
      return a
    }
    const snapshot: OptimizerSnapshot = {
      kind: doc.optimizer.kind,
      accumulated: doc.optimizer.accumulated,
      buckets: doc.optimizer.buckets.map((x) => ({
        key: x.key,
        params: x.params,
        t: x.t,
        m: dec(`${x.key}.m`, x.m),
        v: dec(`${x.key}.v`, x.v),
        buf: dec(`${x.key}.buf`, x.buf),
        acc: dec(`${x.key}.acc`, x.acc),
      })),
    }
    return { values, snapshot, bad }
  }

  const restore = async (file: string): Promise<void> => {
    const { values, snapshot, bad } = await readCheckpoint(file)
    try {
      // The optimizer checks its part before changing anything; parameters were checked above.
      optimizer.load(snapshot)
    } catch (e) {
      throw bad(e instanceof Error ? e.message.replace(/^checkpoint /, "") : String(e))
    }
    for (const { variable, data } of values) {
      const t = tf.tensor(data, variable.shape)
      variable.assign(t)
      t.dispose()
    }
  }

  const dispose = (): void => {
    optimizer.dispose()
    model.dispose()
    allTokens.dispose()
  }

  return { model, optimizer, groups, step, evaluate, checkpoint, restore, dispose }
}
