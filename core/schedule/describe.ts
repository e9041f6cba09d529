/** A phase's schedule in the words of a trainer's code, for `interleave plan`. */
import { type Phase, phaseOffset } from "./spec.ts"

/**
 * The phase's modality predicate as a trainer would write it, `iter` counting the phase's steps
 * from 0: `visual iff (iter + 1) % 9 < 8` is PET-DINO's hook (8:1 visual-first, offset 1).
 */
export const predicateText = (p: Pick<Phase, "ratio" | "order" | "offset">): string => {
  const { visual: v, text: t } = p.ratio
  if (t === 0) return `always visual (${v}:0)`
  if (v === 0) return `always text (0:${t})`
  const o = phaseOffset(p)
  const iter = o === 0 ? "iter" : `(iter + ${o})`
  return p.order === "text-first"
    ? `visual iff ${iter} % ${v + t} >= ${t}`
    : `visual iff ${iter} % ${v + t} < ${v}`
}
