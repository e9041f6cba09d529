/**
 * Gradients of the kernels the model uses, registered with tfjs-core's gradient registry.
 *
 * Why our own: tfjs-core's CommonJS build (what Node, vitest and esbuild load) ships no gradients;
 * they live in `dist/register_all_gradients.js`, an ESM file with extensionless imports that Node
 * cannot load. The umbrella `@tensorflow/tfjs` package that bundles them is not a dependency. So the
 * model keeps to a small set of kernels and this module gives each one its derivative; a kernel
 * outside the set fails loudly ("gradient function not found"), never silently.
 * `test/tfjs-gradients.test.ts` checks every rule against finite differences.
 */
import * as tf from "@tensorflow/tfjs-core"

type Saved = ReadonlyArray<tf.Tensor>
type Attrs = Record<string, unknown>

/** Sums a broadcast gradient back to the shape of the input it came from. */
const unbroadcast = (grad: tf.Tensor, shape: ReadonlyArray<number>): tf.Tensor => {
  const axes = tf.backend_util.getReductionAxes(shape as number[], grad.shape)
  const reduced = axes.length > 0 ? tf.sum(grad, axes) : grad
  return tf.reshape(reduced, shape as number[])
}

const binary = (
  kernelName: string,
  rule: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => [tf.Tensor, tf.Tensor],
): tf.GradConfig => ({
  kernelName,
  inputsToSave: ["a", "b"],
  gradFunc: (dy, saved) => {
    const [a, b] = saved as Saved
    return {
      a: () => unbroadcast(rule(dy as tf.Tensor, a!, b!)[0], a!.shape),
      b: () => unbroadcast(rule(dy as tf.Tensor, a!, b!)[1], b!.shape),
    }
  },
})

const unaryFromInput = (
  kernelName: string,
  rule: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor,
): tf.GradConfig => ({
  kernelName,
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => ({ x: () => rule(dy as tf.Tensor, (saved as Saved)[0]!) }),
})

const unaryFromOutput = (
  kernelName: string,
  rule: (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor,
): tf.GradConfig => ({
  kernelName,
  outputsToSave: [true],
  gradFunc: (dy, saved) => ({ x: () => rule(dy as tf.Tensor, (saved as Saved)[0]!) }),
})

/** Reshapes a reduced gradient so it broadcasts over the reduced axes of `shape`. */
const expandReduced = (dy: tf.Tensor, shape: ReadonlyArray<number>, attrs: Attrs): tf.Tensor => {
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], shape as number[])
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d))
  return tf.reshape(dy, kept)
}

const configs: ReadonlyArray<tf.GradConfig> = [
  binary("Add", (dy) => [dy, dy]),
  binary("Sub", (dy) => [dy, tf.neg(dy)]),
  binary("Multiply", (dy, a, b) => [tf.mul(dy, b), tf.mul(dy, a)]),
  binary("RealDiv", (dy, a, b) => [tf.div(dy, b), tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))]),
  {
    kernelName: "BatchMatMul",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as Saved
      const g = dy as tf.Tensor
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean }
      if (a!.rank !== b!.rank || (a!.rank > 2 && a!.shape[0] !== b!.shape[0]))
        throw new Error("BatchMatMul gradient: broadcast batch dimensions are not supported")
      if (!transposeA && !transposeB)
        return { a: () => tf.matMul(g, b!, false, true), b: () => tf.matMul(a!, g, true, false) }
      if (!transposeA && transposeB)
        return { a: () => tf.matMul(g, b!, false, false), b: () => tf.matMul(g, a!, true, false) }
      if (transposeA && !transposeB)
        return { a: () => tf.matMul(b!, g, false, true), b: () => tf.matMul(a!, g, false, false) }
      return { a: () => tf.matMul(b!, g, true, true), b: () => tf.matMul(g, a!, true, true) }
    },
  },
  unaryFromInput("Neg", (dy) => tf.neg(dy)),
  unaryFromOutput("Exp", (dy, y) => tf.mul(dy, y)),
  unaryFromInput("Log", (dy, x) => tf.div(dy, x)),
  unaryFromOutput("Sigmoid", (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  unaryFromInput("Relu", (dy, x) => tf.mul(dy, tf.step(x))),
  unaryFromInput("Softplus", (dy, x) => tf.mul(dy, tf.sigmoid(x))),
  unaryFromOutput("Sqrt", (dy, y) => tf.div(dy, tf.mul(y, 2))),
  unaryFromInput("Rsqrt", (dy, x) => tf.mul(dy, tf.mul(tf.pow(x, -1.5), -0.5))),
  unaryFromInput("Square", (dy, x) => tf.mul(dy, tf.mul(x, 2))),
  unaryFromInput("Abs", (dy, x) => tf.mul(dy, tf.sign(x))),
  {
    kernelName: "Sum",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const x = (saved as Saved)[0]!
      return { x: () => tf.mul(expandReduced(dy as tf.Tensor, x.shape, attrs as Attrs), tf.onesLike(x)) }
    },
  },
  {
    kernelName: "Mean",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const x = (saved as Saved)[0]!
      const expanded = expandReduced(dy as tf.Tensor, x.shape, attrs as Attrs)
      const count = x.size / expanded.size
      return { x: () => tf.mul(tf.div(expanded, count), tf.onesLike(x)) }
    },
  },
  {
    kernelName: "Reshape",
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => ({ x: () => tf.reshape(dy as tf.Tensor, (saved as Saved)[0]!.shape) }),
  },
  {
    kernelName: "Transpose",
    gradFunc: (dy, _saved, attrs) => {
      const perm = (attrs as { perm: number[] }).perm
      const inverse = perm.map((_, i) => perm.indexOf(i))
      return { x: () => tf.transpose(dy as tf.Tensor, inverse) }
    },
  },
  {
    kernelName: "Softmax",
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const y = (saved as Saved)[0]!
      const dim = (attrs as { dim: number }).dim
      const dyY = tf.mul(dy as tf.Tensor, y)
      return { logits: () => tf.sub(dyY, tf.mul(tf.sum(dyY, [dim], true), y)) }
    },
  },
]

/** Kernel names this module differentiates (the model must stay inside this set). */
export const DIFFERENTIABLE_KERNELS: ReadonlyArray<string> = configs.map((c) => c.kernelName)

let registered = false

/** Registers every rule once per process; idempotent. */
export const registerGradients = (): void => {
  if (registered) return
  for (const c of configs) tf.registerGradient(c)
  registered = true
}
