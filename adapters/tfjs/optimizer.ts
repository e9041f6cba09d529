/**
 * AdamW / Adam / SGD(+momentum) in tf ops, with per-group learning rates and gradient accumulation.
 *
 * Parameters are handled in buckets, one per model module or slice of a large module (every
 * parameter of a module shares the module's spec group, hence its lr and weight decay): a bucket's
 * gradients are flattened into one vector, so an update costs ~20 kernels per bucket instead of
 * ~16 per parameter. On wasm and on
 * GPUs the step is bound by per-kernel dispatch cost, so this is most of the optimizer's time.
 *
 * Semantics follow PyTorch's: a bucket that received no gradient since the last update (the text
 * encoder in a visual step, the visual prompt encoder in a text step) is skipped entirely: no
 * moment update, no weight decay, no step count. Gradients of micro-steps are summed into the
 * bucket's accumulator; an update applies their mean over the micro-steps, then resets.
 * Weight decay applies to matrices only (a 0/1 mask), not to biases, norms and scalars.
 *
 * Tensor ownership: `accumulate` takes ownership of the gradients it is given; every intermediate
 * is made inside tf.tidy; replaced state tensors are disposed.
 */
import * as tf from "@tensorflow/tfjs-core"
import type { Optimizer as OptimizerSpec } from "../../core/schedule/index.ts"
import type { Param } from "./model.ts"

export interface SlotConfig {
  readonly param: Param
  /** Spec group whose lr and weight decay this parameter uses. */
  readonly group: string
  readonly weightDecay: number
}

interface Bucket {
  readonly key: string
  readonly slots: ReadonlyArray<SlotConfig>
  readonly sizes: ReadonlyArray<number>
  readonly group: string
  readonly weightDecay: number
  /** 1 for elements that take weight decay. */
  readonly decayMask: tf.Tensor
  /** Updates applied to this bucket (Adam bias correction). */
  t: number
  m?: tf.Tensor | undefined
  v?: tf.Tensor | undefined
  buf?: tf.Tensor | undefined
  acc?: tf.Tensor | undefined
}

/** Plain-data form of the optimizer for checkpoints. */
export interface OptimizerSnapshot {
  readonly kind: OptimizerSpec["kind"]
  readonly accumulated: number
  readonly buckets: ReadonlyArray<{
    readonly key: string
    /** Parameter names in flattening order, to check the checkpoint fits the model. */
    readonly params: ReadonlyArray<string>
    readonly t: number
    readonly m?: Float32Array | undefined
    readonly v?: Float32Array | undefined
    readonly buf?: Float32Array | undefined
    readonly acc?: Float32Array | undefined
  }>
}

export interface TrainOptimizer {
  /** Adds one micro-step's gradients (keyed by tfjs variable name); takes ownership. */
  readonly accumulate: (grads: Readonly<Record<string, tf.Tensor>>) => void
  /** Micro-steps accumulated since the last update. */
  readonly pending: () => number
  /** Applies the mean of the accumulated gradients with these per-group lrs, then resets. */
  readonly apply: (lr: Readonly<Record<string, number>>) => void
  readonly snapshot: () => Promise<OptimizerSnapshot>
  readonly load: (s: OptimizerSnapshot) => void
  readonly dispose: () => void
}

const replace = (old: tf.Tensor | undefined, next: tf.Tensor): tf.Tensor => {
  old?.dispose()
  return tf.keep(next)
}

/** Buckets by module; parameters keep their model order inside a bucket. */
/**
 * Elements per bucket at most: an update holds ~15 bucket-sized temporaries, so large modules
 * (the `base` backbone has ~5M parameters) are cut into several buckets to bound the update's
 * memory peak; the `tiny` modules each fit in one.
 */
export const BUCKET_ELEMENTS = 1 << 20

const makeBuckets = (slots: ReadonlyArray<SlotConfig>): Bucket[] => {
  const byKey = new Map<string, SlotConfig[]>()
  const filled = new Map<string, number>()
  const part = new Map<string, number>()
  for (const s of slots) {
    const m = s.param.module
    const size = s.param.variable.size
    const used = filled.get(m) ?? 0
    if (used > 0 && used + size > BUCKET_ELEMENTS) {
      part.set(m, (part.get(m) ?? 0) + 1)
      filled.set(m, 0)
    }
    filled.set(m, (filled.get(m) ?? 0) + size)
    const key = `${m}#${part.get(m) ?? 0}`
    const list = byKey.get(key) ?? []
    list.push(s)
    byKey.set(key, list)
  }
  return [...byKey].map(([key, list]) => {
    const sizes = list.map((s) => s.param.variable.size)
    const mask = new Float32Array(sizes.reduce((a, b) => a + b, 0))
    let o = 0
    list.forEach((s, i) => {
      if (s.param.decay) mask.fill(1, o, o + sizes[i]!)
      o += sizes[i]!
    })
    return {
      key,
      slots: list,
      sizes,
      group: list[0]!.group,
      weightDecay: list[0]!.weightDecay,
      decayMask: tf.keep(tf.tensor1d(mask)),
      t: 0,
    }
  })
}

export const makeOptimizer = (spec: OptimizerSpec, slots: ReadonlyArray<SlotConfig>): TrainOptimizer => {
  for (const s of slots) {
    const first = slots.find((o) => o.param.module === s.param.module)!
    if (first.group !== s.group || first.weightDecay !== s.weightDecay)
      throw new Error(`module ${s.param.module} spans several parameter groups`)
  }
  const buckets = makeBuckets(slots)
  let accumulated = 0

  const accumulate = (grads: Readonly<Record<string, tf.Tensor>>): void => {
    try {
      for (const b of buckets) {
        const present = b.slots.filter((s) => grads[s.param.variable.name] !== undefined)
        if (present.length === 0) continue
        const flat = tf.tidy(() =>
          tf.concat(
            b.slots.map((s, i) => {
              const g = grads[s.param.variable.name]
              // A parameter of a half-used module gets a zero gradient (does not occur in this model).
              return g ? tf.reshape(g, [-1]) : tf.zeros([b.sizes[i]!])
            }),
          ),
        )
        b.acc = b.acc
          ? replace(
              b.acc,
              tf.tidy(() => tf.add(b.acc!, flat)),
            )
          : tf.keep(flat)
        if (b.acc !== flat) flat.dispose()
      }
      accumulated++
    } finally {
      for (const g of Object.values(grads)) g.dispose()
    }
  }

  const updateBucket = (b: Bucket, lr: number): void => {
    const { beta1: b1, beta2: b2, epsilon: eps, momentum } = spec
    const wd = b.weightDecay
    b.t++
    const sum = b.acc!
    const next = tf.tidy(() => {
      const p = tf.concat(b.slots.map((s) => tf.reshape(s.param.variable, [-1])))
      let g = accumulated > 1 ? tf.div(sum, accumulated) : sum
      const decay = () => tf.mul(tf.mul(p, b.decayMask), wd)
      let updated: tf.Tensor
      if (spec.kind === "sgd") {
        if (wd > 0) g = tf.add(g, decay())
        let dir = g
        if (momentum > 0) {
          dir = b.buf ? tf.add(tf.mul(b.buf, momentum), g) : tf.clone(g)
          b.buf = replace(b.buf, dir)
        }
        updated = tf.sub(p, tf.mul(dir, lr))
      } else {
        if (spec.kind === "adam" && wd > 0) g = tf.add(g, decay())
        const m = b.m ? tf.add(tf.mul(b.m, b1), tf.mul(g, 1 - b1)) : tf.mul(g, 1 - b1)
        const v = b.v ? tf.add(tf.mul(b.v, b2), tf.mul(tf.square(g), 1 - b2)) : tf.mul(tf.square(g), 1 - b2)
        b.m = replace(b.m, m)
        b.v = replace(b.v, v)
        const bc1 = 1 - b1 ** b.t
        const bc2 = 1 - b2 ** b.t
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps)
        // AdamW: decoupled decay, p <- p - lr * wd * p, before the Adam step.
        const base = spec.kind === "adamw" && wd > 0 ? tf.sub(p, tf.mul(decay(), lr)) : p
        updated = tf.sub(base, tf.mul(tf.div(m, denom), lr / bc1))
      }
      return tf
        .split(updated, b.sizes as number[])
        .map((t, i) => tf.reshape(t, b.slots[i]!.param.variable.shape))
    })
    next.forEach((t, i) => {
      b.slots[i]!.param.variable.assign(t)
      t.dispose()
    })
  }

  const apply = (lr: Readonly<Record<string, number>>): void => {
    if (accumulated === 0) return
    for (const b of buckets) {
      if (!b.acc) continue
      const groupLr = lr[b.group]
      if (groupLr === undefined || !Number.isFinite(groupLr))
        throw new Error(`the plan has no finite lr for parameter group "${b.group}"`)
      updateBucket(b, groupLr)
      b.acc.dispose()
      b.acc = undefined
    }
    accumulated = 0
  }

  const read = async (t: tf.Tensor | undefined): Promise<Float32Array | undefined> =>
    t ? new Float32Array(await t.data<"float32">()) : undefined

  const snapshot = async (): Promise<OptimizerSnapshot> => {
    const out: Array<OptimizerSnapshot["buckets"][number]> = []
    for (const b of buckets)
      out.push({
        key: b.key,
        params: b.slots.map((s) => s.param.name),
        t: b.t,
        m: await read(b.m),
        v: await read(b.v),
        buf: await read(b.buf),
        acc: await read(b.acc),
      })
    return { kind: spec.kind, accumulated, buckets: out }
  }

  const clearState = (): void => {
    for (const b of buckets) {
      for (const t of [b.m, b.v, b.buf, b.acc]) t?.dispose()
      b.m = b.v = b.buf = b.acc = undefined
      b.t = 0
    }
    accumulated = 0
  }

  const load = (s: OptimizerSnapshot): void => {
    if (s.kind !== spec.kind) throw new Error(`checkpoint optimizer is ${s.kind}, the spec says ${spec.kind}`)
    // Everything is checked before anything changes: a refused snapshot leaves the state as it was.
    for (const saved of s.buckets) {
      const b = buckets.find((x) => x.key === saved.key)
      if (!b || b.slots.map((x) => x.param.name).join(",") !== saved.params.join(","))
        throw new Error(`checkpoint optimizer bucket ${saved.key} does not match the model`)
      const size = b.sizes.reduce((a, c) => a + c, 0)
      for (const [name, a] of [
        ["m", saved.m],
        ["v", saved.v],
        ["buf", saved.buf],
        ["acc", saved.acc],
      ] as const)
        if (a !== undefined && a.length !== size)
          throw new Error(
            `checkpoint optimizer bucket ${saved.key}: ${name} holds ${a.length} values, the bucket has ${size}`,
          )
    }
    clearState()
    for (const saved of s.buckets) {
      const b = buckets.find((x) => x.key === saved.key)!
      const t = (a: Float32Array | undefined) => (a ? tf.keep(tf.tensor1d(a)) : undefined)
      b.t = saved.t
      b.m = t(saved.m)
      b.v = t(saved.v)
      b.buf = t(saved.buf)
      b.acc = t(saved.acc)
    }
    accumulated = s.accumulated
  }

  return {
    accumulate,
    pending: () => accumulated,
    apply,
    snapshot,
    load,
    dispose: () => {
      clearState()
      for (const b of buckets) b.decayMask.dispose()
    },
  }
}
