/**
 * tfjs-core's own gradient rules, loaded once per process before the first training step.
 *
 * What tfjs-core 4.22.0 ships: its CommonJS build (`dist/tf-core.node.js`, the package's `main`,
 * what `import "@tensorflow/tfjs-core"` loads under Node, tsx, vitest and the CLI bundle) and its
 * other bundles (`tf-core.js`, `tf-core.fesm.js`, `tf-core.es2017.js`, `miniprogram/`) hold no
 * gradient configs at all. The rules exist only as ES modules: `dist/register_all_gradients.js`
 * and `dist/gradients/*_grad.js`, which import their ops with extensionless relative specifiers
 * (`from '../ops/mat_mul'`) from a package without `"type": "module"`. So:
 * - vitest transforms them itself (it inlines ESM found in a CommonJS package);
 * - esbuild bundles them where tfjs is bundled in (../shared/gpu/pack.sh);
 * - plain Node (the CLI bundle, which keeps `@tensorflow/*` external) fails on the extensionless
 *   specifiers, and tsx hands the nested files to Node's require(esm), which fails the same way.
 * For the last two a module hook (`module.register`, Node >= 20.6) appends `.js` to relative
 * specifiers inside tfjs-core's dist/ and loads those files as ES modules. Nothing else is
 * touched: the hook passes every other specifier and URL through.
 *
 * The ES-module graph is a second instance of tfjs-core's modules, but tfjs keeps its engine,
 * kernel and gradient registries and Tensor class on one global namespace for exactly this case,
 * so the rules it registers serve the CommonJS instance the model runs on. Loading costs about
 * 0.4 s once per process (2-core CPU; ~400 ES modules), against ~2 s for a tfjs run's start.
 *
 * One rule is wrapped: tfjs-core's BatchMatMul gradient does not reduce over broadcast batch
 * dimensions (a [2,3,4] x [4,5] product gets a [2,4,5] gradient for its [4,5] input, which the
 * engine then rejects). The wrapper sums the library's result back to each input's shape. The
 * model's products do not broadcast today; test/adapters/tfjs-gradients.test.ts checks both cases.
 */
import { register } from "node:module"
import * as tf from "@tensorflow/tfjs-core"

/** The module hook, as a data: URL so it travels inside any bundle. */
const HOOK = `
import { readFile } from "node:fs/promises"
const DIST = "/@tensorflow/tfjs-core/dist/"
const BUNDLE = /\\/tf-core[^/]*\\.js$/
export async function resolve(specifier, context, next) {
  if (context.parentURL?.includes(DIST) && specifier.startsWith(".") && !specifier.endsWith(".js"))
    return next(specifier + ".js", context)
  return next(specifier, context)
}
export async function load(url, context, next) {
  if (url.startsWith("file:") && url.includes(DIST) && url.endsWith(".js") && !BUNDLE.test(url))
    return { format: "module", source: await readFile(new URL(url)), shortCircuit: true }
  return next(url, context)
}
`

/** Sums a gradient computed at a broadcast shape back to the shape of its input. */
const sumTo = (g: tf.Tensor, shape: ReadonlyArray<number>): tf.Tensor => {
  if (g.shape.join("x") === shape.join("x")) return g
  const axes = tf.backend_util.getReductionAxes(shape as number[], g.shape)
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape as number[])
}

/**
 * Marks the wrapper on the global registry's entry. A second instance of tfjs-core's gradient
 * modules (another module loader in the same process: the CLI bundle run in-process beside
 * vitest's own copy) registers the library's rule again over it; the mark says whether it did.
 */
const WRAPPED = Symbol.for("interleave.tfjs.batchMatMulSumsBroadcast")

const wrapBatchMatMul = (): void => {
  const lib = tf.getGradient("BatchMatMul")
  if (!lib) throw new Error("tfjs-core registered no BatchMatMul gradient")
  if ((lib.gradFunc as { [WRAPPED]?: true })[WRAPPED]) return
  const gradFunc: tf.GradConfig["gradFunc"] = (dy, saved, attrs) => {
    const [a, b] = saved as tf.Tensor[]
    const g = lib.gradFunc(dy, saved, attrs)
    return { a: () => sumTo(g.a!(), a!.shape), b: () => sumTo(g.b!(), b!.shape) }
  }
  Object.assign(gradFunc, { [WRAPPED]: true })
  tf.registerGradient({ ...lib, gradFunc })
}

let loading: Promise<void> | undefined

/** Registers tfjs-core's gradients (and the BatchMatMul wrapper) once per process. */
export const loadGradients = (): Promise<void> => {
  loading ??= (async () => {
    try {
      register(`data:text/javascript,${encodeURIComponent(HOOK)}`)
    } catch {
      // No module hooks here (an embedder without them): the import below may still work.
    }
    await import("@tensorflow/tfjs-core/dist/register_all_gradients.js")
  })()
  // Checked at every call, not once: the library's rule may have been registered again since.
  return loading.then(wrapBatchMatMul)
}
