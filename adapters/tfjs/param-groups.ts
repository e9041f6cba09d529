/**
 * Which of the spec's optimizer groups each model module trains in.
 *
 * The model has five modules; a scenario names its groups freely (T-Rex2: backbone / text encoder
 * / the rest; PET-DINO: backbone / language_model / neck / default). The rule, in order:
 * 1. a group whose name equals the module's name (ignoring case and punctuation);
 * 2. else the first group one of whose words is a keyword of the module
 *    (e.g. "language_model" -> text-encoder, "decoder" -> head);
 * 3. else a catch-all group named default / rest / other(s) / all / base, if there is one;
 * 4. else the last group.
 */

export const MODULES = ["backbone", "neck", "text-encoder", "visual-encoder", "head"] as const
export type ModuleName = (typeof MODULES)[number]

const KEYWORDS: Record<ModuleName, ReadonlyArray<string>> = {
  backbone: ["backbone", "image", "vision", "swin", "vit", "resnet"],
  neck: ["neck", "fpn"],
  "text-encoder": ["text", "language", "lm", "bert", "clip", "token"],
  "visual-encoder": ["visual", "prompt", "vpe", "exemplar"],
  head: ["head", "decoder", "detector", "box", "bbox", "cls", "classifier"],
}

const CATCH_ALL = new Set(["default", "rest", "other", "others", "all", "base"])

const normal = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, "")
const words = (s: string): string[] =>
  s
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0)

/** Maps every module to one of `groupNames` (which must be non-empty). */
export const assignGroups = (groupNames: ReadonlyArray<string>): Record<ModuleName, string> => {
  if (groupNames.length === 0) throw new Error("the optimizer needs at least one parameter group")
  const fallback = groupNames.find((g) => CATCH_ALL.has(normal(g))) ?? groupNames[groupNames.length - 1]!
  const out = {} as Record<ModuleName, string>
  for (const m of MODULES) {
    const exact = groupNames.find((g) => normal(g) === normal(m))
    const byWord = groupNames.find((g) => words(g).some((w) => KEYWORDS[m].includes(w)))
    out[m] = exact ?? byWord ?? fallback
  }
  return out
}

/** "backbone=backbone, neck=rest, ..." for the adapter description. */
export const describeAssignment = (a: Record<ModuleName, string>): string =>
  MODULES.map((m) => `${m}=${a[m]}`).join(", ")
