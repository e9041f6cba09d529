/**
 * A small T-Rex2-like open-set detector in TensorFlow.js core ops (no tfjs-layers).
 *
 *   image patches -> [backbone: patch embedding + attention/MLP blocks] -> [neck: LN + projection] = F
 *   text prompt   -> [text-encoder: token embedding -> per-token MLP -> mean pool -> MLP -> LN] = e
 *   visual prompt -> [visual-encoder: box sine-cosine embedding -> MLP -> cross-attention over the
 *                     prompt image's F, restricted to the box -> MLP -> LN] = e
 *   [head] score(prompt, patch) = scale * <e, F_patch> / sqrt(d) + bias;  box(patch) = MLP(F_patch)
 *
 * Every layer is a matmul (the patch embedding is reshape + matmul): it trains on every backend
 * (wasm has no conv filter gradient) and keeps GPU dispatches few. A visual step runs the visual
 * prompt encoder over image features on top of what a text step does, so it is heavier, as in
 * T-Rex2.
 *
 * Losses: sigmoid focal loss on the scores, L1 on boxes, and InfoNCE alignment of visual prompt
 * embeddings to the text embeddings of their classes, weighted by the adapter's `alignWeight`
 * option (default 1; 0 leaves the term out, T-Rex2's no-alignment ablation). The text side of the
 * alignment is a constant (computed outside the gradient tape: a stop-gradient), so visual steps
 * never train the text encoder; text steps run no visual prompts, so they never train the visual
 * prompt encoder.
 */
import * as tf from "@tensorflow/tfjs-core"
import { hashOf, mulberry32, NUM_CLASSES, patchCentre, patchDim, TOKENS_PER_NAME, VOCAB } from "./data.ts"
import type { ModuleName } from "./param-groups.ts"
import type { ModelPreset } from "./presets.ts"

export interface Param {
  /** Stable name inside the model ("backbone/block0/attn/wq"), used in checkpoints. */
  readonly name: string
  readonly module: ModuleName
  readonly variable: tf.Variable
  /**
   * Weight decay applies to weight matrices only: not to biases, norms, scalars or embeddings
   * (the position and token tables), as in the reference PyTorch trainer.
   */
  readonly decay: boolean
}

export interface Model {
  readonly preset: ModelPreset
  readonly params: ReadonlyArray<Param>
  /** tfjs variable name -> param. */
  readonly byVariable: ReadonlyMap<string, Param>
  readonly dispose: () => void
}

// ---- initialisation ----------------------------------------------------------------------------

let sessionCounter = 0

/** Seeded Gaussian values (Box-Muller over mulberry32), independent of tfjs's own RNG. */
const gaussian = (seed: number, n: number, std: number): Float32Array => {
  const rand = mulberry32(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12)
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u)) * std
    out[i] = r * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v)
  }
  return out
}

const nameHash = (s: string): number => {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

export const createModel = (preset: ModelPreset, seed: number): Model => {
  const prefix = `interleave${++sessionCounter}`
  const params: Param[] = []
  const d = preset.width
  const hidden = d * preset.mlpRatio

  const add = (
    module: ModuleName,
    name: string,
    shape: number[],
    init: "normal" | "zeros" | "ones" | number,
    decay = shape.length > 1,
  ) => {
    const size = shape.reduce((a, b) => a * b, 1)
    let values: Float32Array
    if (init === "normal") values = gaussian(hashOf(seed, nameHash(name)), size, 1 / Math.sqrt(shape[0]!))
    else if (typeof init === "number") values = new Float32Array(size).fill(init)
    else values = new Float32Array(size).fill(init === "ones" ? 1 : 0)
    const initial = tf.tensor(values, shape)
    const variable = tf.variable(initial, true, `${prefix}/${name}`)
    initial.dispose()
    params.push({ name, module, variable, decay })
  }
  const dense = (module: ModuleName, name: string, fanIn: number, fanOut: number) => {
    add(module, `${name}/w`, [fanIn, fanOut], "normal")
    add(module, `${name}/b`, [fanOut], "zeros")
  }
  const norm = (module: ModuleName, name: string) => {
    add(module, `${name}/g`, [d], "ones")
    add(module, `${name}/b`, [d], "zeros")
  }
  const n = (preset.imageSize / preset.patchSize) ** 2

  dense("backbone", "backbone/patch", patchDim(preset), d)
  // Embedding tables are matrices but take no weight decay.
  add("backbone", "backbone/pos", [n, d], "normal", false)
  for (let b = 0; b < preset.encoderBlocks; b++) {
    const p = `backbone/block${b}`
    norm("backbone", `${p}/ln1`)
    for (const m of ["wq", "wk", "wv", "wo"]) dense("backbone", `${p}/attn/${m}`, d, d)
    norm("backbone", `${p}/ln2`)
    dense("backbone", `${p}/mlp1`, d, hidden)
    dense("backbone", `${p}/mlp2`, hidden, d)
  }
  norm("neck", "neck/ln")
  dense("neck", "neck/proj", d, d)

  add("text-encoder", "text/tokens", [VOCAB.length, d], "normal", false)
  dense("text-encoder", "text/mlp1", d, hidden)
  dense("text-encoder", "text/mlp2", hidden, d)
  norm("text-encoder", "text/ln")

  dense("visual-encoder", "visual/box1", 8 * preset.boxFreqs, d)
  dense("visual-encoder", "visual/box2", d, d)
  for (let l = 0; l < preset.promptLayers; l++) {
    const p = `visual/layer${l}`
    norm("visual-encoder", `${p}/ln1`)
    for (const m of ["wq", "wk", "wv", "wo"]) dense("visual-encoder", `${p}/attn/${m}`, d, d)
    norm("visual-encoder", `${p}/ln2`)
    dense("visual-encoder", `${p}/mlp1`, d, hidden)
    dense("visual-encoder", `${p}/mlp2`, hidden, d)
  }
  norm("visual-encoder", "visual/ln")

  add("head", "head/scale", [1], "ones")
  // Prior on the score bias (focal-loss practice): most (prompt, patch) pairs are negative.
  add("head", "head/bias", [1], -4)
  dense("head", "head/box1", d, d)
  // Zero-initialised box output: every patch starts at its anchor instead of a random box.
  add("head", "head/box2/w", [d, 4], "zeros")
  add("head", "head/box2/b", [4], "zeros")

  const byVariable = new Map(params.map((p) => [p.variable.name, p]))
  return {
    preset,
    params,
    byVariable,
    dispose: () => {
      for (const p of params) p.variable.dispose()
    },
  }
}

// ---- layers ------------------------------------------------------------------------------------

type W = (name: string) => tf.Tensor

const lookup = (model: Model): W => {
  const map = new Map(model.params.map((p) => [p.name, p.variable as tf.Tensor]))
  return (name) => {
    const t = map.get(name)
    if (!t) throw new Error(`no parameter ${name}`)
    return t
  }
}

const dense = (w: W, name: string, x: tf.Tensor): tf.Tensor =>
  tf.add(tf.matMul(x, w(`${name}/w`)), w(`${name}/b`))

const layerNorm = (w: W, name: string, x: tf.Tensor): tf.Tensor => {
  const mu = tf.mean(x, -1, true)
  const xc = tf.sub(x, mu)
  const variance = tf.mean(tf.square(xc), -1, true)
  const xn = tf.mul(xc, tf.rsqrt(tf.add(variance, 1e-5)))
  return tf.add(tf.mul(xn, w(`${name}/g`)), w(`${name}/b`))
}

const mlp = (w: W, name: string, x: tf.Tensor): tf.Tensor =>
  dense(w, `${name}/mlp2`, tf.relu(dense(w, `${name}/mlp1`, x)))

/** [B*N, d] -> [B*H, N, d/H] */
const splitHeads = (x: tf.Tensor, b: number, n: number, h: number, dh: number): tf.Tensor =>
  tf.reshape(tf.transpose(tf.reshape(x, [b, n, h, dh]), [0, 2, 1, 3]), [b * h, n, dh])

const mergeHeads = (x: tf.Tensor, b: number, n: number, h: number, dh: number): tf.Tensor =>
  tf.reshape(tf.transpose(tf.reshape(x, [b, h, n, dh]), [0, 2, 1, 3]), [b * n, h * dh])

const selfAttention = (w: W, name: string, x: tf.Tensor, b: number, n: number, heads: number): tf.Tensor => {
  const d = x.shape[1]!
  const dh = d / heads
  const q = splitHeads(dense(w, `${name}/wq`, x), b, n, heads, dh)
  const k = splitHeads(dense(w, `${name}/wk`, x), b, n, heads, dh)
  const v = splitHeads(dense(w, `${name}/wv`, x), b, n, heads, dh)
  const attn = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)))
  return dense(w, `${name}/wo`, mergeHeads(tf.matMul(attn, v), b, n, heads, dh))
}

// ---- modules -----------------------------------------------------------------------------------

/** Shared image encoder (backbone + neck): patch rows [B*N, patchDim] -> features F [B*N, d]. */
export const encodeImages = (model: Model, patches: tf.Tensor, batch: number): tf.Tensor => {
  const w = lookup(model)
  const p = model.preset
  const n = (p.imageSize / p.patchSize) ** 2
  const d = p.width
  let x = dense(w, "backbone/patch", patches)
  x = tf.reshape(tf.add(tf.reshape(x, [batch, n, d]), w("backbone/pos")), [batch * n, d])
  for (let b = 0; b < p.encoderBlocks; b++) {
    const name = `backbone/block${b}`
    x = tf.add(x, selfAttention(w, `${name}/attn`, layerNorm(w, `${name}/ln1`, x), batch, n, p.heads))
    x = tf.add(x, mlp(w, name, layerNorm(w, `${name}/ln2`, x)))
  }
  return dense(w, "neck/proj", layerNorm(w, "neck/ln", x))
}

/** One-hot rows [C*T, V] of token ids; the embedding lookup is a matmul (no gather gradient). */
export const oneHotTokens = (tokens: Int32Array): tf.Tensor => {
  const out = new Float32Array(tokens.length * VOCAB.length)
  tokens.forEach((t, i) => {
    out[i * VOCAB.length + t] = 1
  })
  return tf.tensor(out, [tokens.length, VOCAB.length])
}

/** Text prompt encoder: one-hot tokens [C*T, V] -> prompt embeddings [C, d]. */
export const encodeText = (model: Model, oneHot: tf.Tensor): tf.Tensor => {
  const w = lookup(model)
  const c = oneHot.shape[0]! / TOKENS_PER_NAME
  const tokens = tf.relu(dense(w, "text/mlp1", tf.matMul(oneHot, w("text/tokens"))))
  const pooled = tf.mean(tf.reshape(tokens, [c, TOKENS_PER_NAME, tokens.shape[1]!]), 1)
  return layerNorm(w, "text/ln", dense(w, "text/mlp2", pooled))
}

/**
 * Visual prompt encoder: K boxes per image, each attending over its own image's features inside
 * the box (the bias is -1e4 outside), two residual sub-layers per layer, as a deformable-attention
 * stand-in. boxEmb [B*K, 8*freqs], boxBias [B, K, N], feats [B*N, d] -> prompt embeddings [B*K, d].
 */
export const encodeVisual = (
  model: Model,
  feats: tf.Tensor,
  boxEmb: tf.Tensor,
  boxBias: tf.Tensor,
): tf.Tensor => {
  const w = lookup(model)
  const p = model.preset
  const [b, k, n] = boxBias.shape as [number, number, number]
  const d = p.width
  let q = dense(w, "visual/box2", tf.relu(dense(w, "visual/box1", boxEmb)))
  for (let l = 0; l < p.promptLayers; l++) {
    const name = `visual/layer${l}`
    const h = layerNorm(w, `${name}/ln1`, q)
    const qh = tf.reshape(dense(w, `${name}/attn/wq`, h), [b, k, d])
    const kf = tf.reshape(dense(w, `${name}/attn/wk`, feats), [b, n, d])
    const vf = tf.reshape(dense(w, `${name}/attn/wv`, feats), [b, n, d])
    const logits = tf.add(tf.mul(tf.matMul(qh, kf, false, true), 1 / Math.sqrt(d)), boxBias)
    const pooled = tf.reshape(tf.matMul(tf.softmax(logits), vf), [b * k, d])
    q = tf.add(q, dense(w, `${name}/attn/wo`, pooled))
    q = tf.add(q, mlp(w, name, layerNorm(w, `${name}/ln2`, q)))
  }
  return layerNorm(w, "visual/ln", q)
}

/** Prompt-conditioned scores [P, B*N]: scale * <e, F> / sqrt(d) + bias. */
export const scorePrompts = (model: Model, prompts: tf.Tensor, feats: tf.Tensor): tf.Tensor => {
  const w = lookup(model)
  const dot = tf.matMul(prompts, feats, false, true)
  return tf.add(tf.mul(dot, tf.mul(w("head/scale"), 1 / Math.sqrt(model.preset.width))), w("head/bias"))
}

/** Anchors [B*N, 4]: patch centre and a typical object size; the box head predicts offsets. */
export const boxAnchors = (model: Model, batch: number): tf.Tensor => {
  const n = (model.preset.imageSize / model.preset.patchSize) ** 2
  const out = new Float32Array(batch * n * 4)
  for (let r = 0; r < batch * n; r++) {
    const [x, y] = patchCentre(model.preset, r % n)
    out.set([x, y, 0.35, 0.35], r * 4)
  }
  return tf.tensor(out, [batch * n, 4])
}

/** Class-agnostic box of each patch [B*N, 4] as (cx, cy, w, h). */
export const predictBoxes = (model: Model, feats: tf.Tensor, anchors: tf.Tensor): tf.Tensor => {
  const w = lookup(model)
  return tf.add(dense(w, "head/box2", tf.relu(dense(w, "head/box1", feats))), anchors)
}

// ---- losses ------------------------------------------------------------------------------------

export const FOCAL_ALPHA = 0.25
export const BOX_WEIGHT = 10
export const ALIGN_TEMPERATURE = 0.1

/** Sigmoid focal loss (gamma 2), summed and divided by the number of positives. */
export const focalLoss = (logits: tf.Tensor, targets: tf.Tensor, positives: number): tf.Tensor => {
  const p = tf.sigmoid(logits)
  const ce = tf.sub(tf.softplus(logits), tf.mul(logits, targets))
  // 1 - p_t = p + y - 2py
  const oneMinusPt = tf.sub(tf.add(p, targets), tf.mul(tf.mul(p, targets), 2))
  const alpha = tf.add(tf.mul(targets, 2 * FOCAL_ALPHA - 1), 1 - FOCAL_ALPHA)
  const loss = tf.mul(tf.mul(alpha, ce), tf.square(oneMinusPt))
  return tf.div(tf.sum(loss), Math.max(1, positives))
}

/** Mean L1 over the coordinates of patches that lie on an object. */
export const boxL1 = (pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, masked: number): tf.Tensor =>
  tf.div(tf.sum(tf.mul(tf.abs(tf.sub(pred, target)), mask)), Math.max(1, masked * 4))

const l2normalize = (x: tf.Tensor): tf.Tensor =>
  tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-8)))

/**
 * InfoNCE of visual prompt embeddings [P, d] against every class's text embedding [C, d] (a
 * constant: no gradient reaches the text encoder), target = the prompt's class (one-hot [P, C]).
 * Cosine logits are bounded by 1/temperature, so log-sum-exp needs no max shift.
 */
export const alignmentLoss = (visual: tf.Tensor, textConst: tf.Tensor, classOneHot: tf.Tensor): tf.Tensor => {
  const logits = tf.div(
    tf.matMul(l2normalize(visual), l2normalize(textConst), false, true),
    ALIGN_TEMPERATURE,
  )
  const lse = tf.log(tf.sum(tf.exp(logits), 1))
  const picked = tf.sum(tf.mul(logits, classOneHot), 1)
  return tf.mean(tf.sub(lse, picked))
}

export const classOneHot = (classes: ReadonlyArray<number>): tf.Tensor => {
  const out = new Float32Array(classes.length * NUM_CLASSES)
  classes.forEach((c, i) => {
    out[i * NUM_CLASSES + c] = 1
  })
  return tf.tensor(out, [classes.length, NUM_CLASSES])
}
