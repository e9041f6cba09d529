/**
 * Every gradient rule of adapters/tfjs/gradients.ts against central finite differences (cpu
 * backend, float32). A rule with a sign or broadcasting error fails here by a wide margin.
 */
import * as tf from "@tensorflow/tfjs-core"
import { beforeAll, describe, expect, it } from "vitest"
import { useBackend } from "../adapters/tfjs/backend.ts"
import { mulberry32 } from "../adapters/tfjs/data.ts"
import { DIFFERENTIABLE_KERNELS } from "../adapters/tfjs/gradients.ts"

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
  const analytic = tf
    .grads(loss)(inputs)
    .map((g) => Array.from(g.dataSync()))
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

beforeAll(async () => {
  await useBackend("cpu")
})

describe("tfjs gradient rules", () => {
  it("covers the kernels the model needs", () => {
    for (const k of [
      "BatchMatMul",
      "Add",
      "Softmax",
      "Mean",
      "Sum",
      "Sigmoid",
      "Softplus",
      "Reshape",
      "Transpose",
    ])
      expect(DIFFERENTIABLE_KERNELS).toContain(k)
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
