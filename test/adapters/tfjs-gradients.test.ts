/**
 * tfjs-core's own gradient rules, as adapters/tfjs/gradients.ts loads them, against central finite
 * differences (cpu backend, float32) on the ops the model uses, and a check that every kernel of
 * a real training step has a rule. A rule with a sign or broadcasting error fails here by a wide
 * margin.
 */
import * as tf from "@tensorflow/tfjs-core"
import { Either } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { useBackend } from "../../adapters/tfjs/backend.ts"
import { mulberry32 } from "../../adapters/tfjs/data.ts"
import { loadGradients } from "../../adapters/tfjs/gradients.ts"
import { PRESETS } from "../../adapters/tfjs/presets.ts"
import { makeTrainer } from "../../adapters/tfjs/trainer.ts"
import { makePlanner } from "../../core/schedule/plan.ts"
import { decodeSpec } from "../../core/schedule/spec.ts"

const rand = mulberry32(42)
const values = (shape: number[], lo = -1, hi = 1): tf.Tensor => {
  const n = shape.reduce((a, b) => a * b, 1)
  return tf.tensor(
    Array.from({ length: n }, () => lo + (hi - lo) * rand()),
    shape,
  )
}

/** Checks d/dx sum(f(x...) * w) for every input against finite differences. */
const check = (f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]) => {
  const probe = tf.tidy(() => f(...inputs))
  const w = values(probe.shape)
  probe.dispose()
  const loss = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), w))
  const grads = tf.grads(loss)(inputs)
  grads.forEach((g, i) => {
    expect(g.shape).toEqual(inputs[i]!.shape)
  })
  const analytic = grads.map((g) => Array.from(g.dataSync()))
  const eps = 1e-2
  inputs.forEach((x, i) => {
    const base = Array.from(x.dataSync())
    base.forEach((_, j) => {
      const at = (delta: number) =>
        tf.tidy(() => {
          const moved = base.slice()
          moved[j]! += delta
          const xs = inputs.map((t, k) => (k === i ? tf.tensor(moved, x.shape) : t))
          return loss(...xs).dataSync()[0]!
        })
      const numeric = (at(eps) - at(-eps)) / (2 * eps)
      const got = analytic[i]![j]!
      expect(Math.abs(got - numeric)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)))
    })
  })
}

const FORWARD_KERNELS = [
  "Add",
  "Sub",
  "Multiply",
  "RealDiv",
  "BatchMatMul",
  "Exp",
  "Log",
  "Sigmoid",
  "Relu",
  "Softplus",
  "Sqrt",
  "Rsqrt",
  "Square",
  "Abs",
  "Sum",
  "Mean",
  "Reshape",
  "Transpose",
  "Softmax",
]

beforeAll(async () => {
  await useBackend("cpu")
  await loadGradients()
})

describe("tfjs-core's gradient rules", () => {
  it("trains a text step and a visual step with alignment on the library's rules alone", async () => {
    const spec = Either.getOrThrow(
      decodeSpec({
        name: "kernels",
        seed: 1,
        phases: [{ name: "joint", steps: 9, ratio: { visual: 8, text: 1 }, order: "text-first" }],
        batch: { visual: { size: 2 }, text: { size: 2 } },
        optimizer: { kind: "adamw", lr: 1e-3, groups: [{ name: "all" }] },
      }),
    )
    const trainer = makeTrainer(spec, PRESETS.tiny, { validationImages: 4 })
    const planner = makePlanner(spec)
    const kernels = new Set<string>()
    try {
      // Step 0 is text, step 1 the first visual step (with the alignment term). A kernel on the
      // tape without a rule would throw "gradient function not found" here.
      for (const i of [0, 1]) {
        const info = await tf.profile(async () => {
          const r = await trainer.step(planner.at(i))
          expect(Object.keys(r.losses).sort()).toEqual(
            i === 0 ? ["box", "cls", "total"] : ["align", "box", "cls", "total"],
          )
          return []
        })
        for (const k of info.kernels) kernels.add(k.name)
      }
    } finally {
      trainer.dispose()
    }
    // The forward kernels of the model (what the hand-written rules used to cover): the step runs
    // each of them, and each has a rule from tfjs-core.
    for (const k of FORWARD_KERNELS) {
      expect(kernels, k).toContain(k)
      expect(tf.getGradient(k), k).toBeDefined()
    }
  })

  it("binary ops, with broadcasting", () => {
    check((a, b) => tf.add(a!, b!), [values([2, 3]), values([3])])
    check((a, b) => tf.sub(a!, b!), [values([2, 3]), values([2, 1])])
    check((a, b) => tf.mul(a!, b!), [values([2, 3, 2]), values([3, 2])])
    check((a, b) => tf.div(a!, b!), [values([2, 3]), values([1, 3], 0.5, 1.5)])
  })

  it("matmul in all transpose combinations, 2-D and batched", () => {
    for (const [ta, tb] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      const a = values(ta ? [3, 2] : [2, 3])
      const b = values(tb ? [4, 3] : [3, 4])
      check((x, y) => tf.matMul(x!, y!, ta, tb), [a, b])
    }
    check((x, y) => tf.matMul(x!, y!, false, true), [values([2, 3, 4]), values([2, 5, 4])])
  })

  it("batchMatMul with broadcast batch dimensions (tfjs-core's own rule does not reduce them)", () => {
    check((x, y) => tf.matMul(x!, y!), [values([2, 3, 4]), values([4, 5])])
    check((x, y) => tf.matMul(x!, y!, true, false), [values([4, 3]), values([2, 4, 5])])
    check((x, y) => tf.matMul(x!, y!, false, true), [values([1, 3, 4]), values([2, 5, 4])])
    // Not [2,1,3,4] x [3,4,2]: tfjs 4.22's cpu kernel computes that product's forward wrongly.
  })

  it("loadGradients wraps BatchMatMul again after the library's rule was registered over it", async () => {
    // What a second instance of tfjs-core's gradient modules does (the CLI bundle run in-process).
    const { batchMatMulGradConfig } = await import("@tensorflow/tfjs-core/dist/gradients/BatchMatMul_grad.js")
    tf.registerGradient(batchMatMulGradConfig)
    expect(() => check((x, y) => tf.matMul(x!, y!), [values([2, 3, 4]), values([4, 5])])).toThrow(/shape/)
    await loadGradients()
    check((x, y) => tf.matMul(x!, y!), [values([2, 3, 4]), values([4, 5])])
  })

  it("unary ops", () => {
    check((x) => tf.neg(x!), [values([4])])
    check((x) => tf.exp(x!), [values([4])])
    check((x) => tf.log(x!), [values([4], 0.5, 2)])
    check((x) => tf.sigmoid(x!), [values([4], -3, 3)])
    check((x) => tf.relu(x!), [tf.tensor([-1, -0.5, 0.4, 1.2])])
    check((x) => tf.softplus(x!), [values([4], -3, 3)])
    check((x) => tf.sqrt(x!), [values([4], 0.5, 2)])
    check((x) => tf.rsqrt(x!), [values([4], 0.5, 2)])
    check((x) => tf.square(x!), [values([4])])
    check((x) => tf.abs(x!), [tf.tensor([-1, -0.5, 0.4, 1.2])])
  })

  it("reductions, shape ops and softmax", () => {
    check((x) => tf.sum(x!, 1), [values([2, 3, 2])])
    check((x) => tf.sum(x!, -1, true), [values([2, 3])])
    check((x) => tf.sum(x!), [values([2, 3])])
    check((x) => tf.mean(x!, -1, true), [values([2, 3])])
    check((x) => tf.mean(x!, 1), [values([2, 3, 2])])
    check((x) => tf.reshape(x!, [3, 2]), [values([2, 3])])
    check((x) => tf.transpose(x!, [0, 2, 1, 3]), [values([1, 2, 3, 2])])
    check((x) => tf.softmax(x!), [values([2, 4], -2, 2)])
  })
})
