/**
 * Flags and positional arguments, each defined once: the @effect/cli parser and the help text,
 * the argv pre-check and its "did you mean" are all generated from the same definition.
 */
import * as Args from "@effect/cli/Args"
import * as Options from "@effect/cli/Options"
import type { Option } from "effect"

export type FlagKind = "text" | "integer" | "number" | "boolean" | "choice"

/** What help and the argv check know about a flag. */
export interface FlagDoc {
  readonly name: string
  readonly kind: FlagKind
  /** Placeholder for the value in help (`--steps N`). */
  readonly value: string
  readonly description: string
  /** The default as the user would type it, or a sentence saying what happens without the flag. */
  readonly default?: string | undefined
  readonly choices?: ReadonlyArray<string> | undefined
}

export interface Flag<A> {
  readonly doc: FlagDoc
  readonly option: Options.Options<A>
}

export interface ArgDoc {
  readonly name: string
  readonly description: string
  readonly optional: boolean
}

export interface Arg<A> {
  readonly doc: ArgDoc
  readonly arg: Args.Args<A>
}

interface FlagInfo {
  readonly value?: string
  readonly default?: string
}

const make = <A>(
  name: string,
  kind: FlagKind,
  description: string,
  info: FlagInfo & { readonly choices?: ReadonlyArray<string> },
  option: Options.Options<A>,
): Flag<A> => ({
  doc: {
    name,
    kind,
    value: info.value ?? (kind === "integer" ? "N" : kind === "number" ? "X" : "TEXT"),
    description,
    default: info.default,
    choices: info.choices,
  },
  option,
})

/** Optional flags: `Option.none()` when absent. */
export const flag = {
  text: (name: string, description: string, info: FlagInfo = {}): Flag<Option.Option<string>> =>
    make(name, "text", description, info, Options.optional(Options.text(name))),
  integer: (name: string, description: string, info: FlagInfo = {}): Flag<Option.Option<number>> =>
    make(name, "integer", description, info, Options.optional(Options.integer(name))),
  number: (name: string, description: string, info: FlagInfo = {}): Flag<Option.Option<number>> =>
    make(name, "number", description, info, Options.optional(Options.float(name))),
  choice: <const C extends ReadonlyArray<string>>(
    name: string,
    choices: C,
    description: string,
    info: FlagInfo = {},
  ): Flag<Option.Option<C[number]>> =>
    make(
      name,
      "choice",
      description,
      { ...info, choices, value: info.value ?? "NAME" },
      Options.optional(Options.choice(name, choices)),
    ),
  boolean: (name: string, description: string): Flag<boolean> =>
    make(name, "boolean", description, { value: "" }, Options.boolean(name)),
}

/** Flags with a default value: the value itself when absent. */
export const flagWithDefault = {
  text: (name: string, description: string, fallback: string, info: FlagInfo = {}): Flag<string> =>
    make(
      name,
      "text",
      description,
      { ...info, default: info.default ?? fallback },
      Options.withDefault(Options.text(name), fallback),
    ),
  integer: (name: string, description: string, fallback: number, info: FlagInfo = {}): Flag<number> =>
    make(
      name,
      "integer",
      description,
      { ...info, default: info.default ?? String(fallback) },
      Options.withDefault(Options.integer(name), fallback),
    ),
  number: (name: string, description: string, fallback: number, info: FlagInfo = {}): Flag<number> =>
    make(
      name,
      "number",
      description,
      { ...info, default: info.default ?? String(fallback) },
      Options.withDefault(Options.float(name), fallback),
    ),
  choice: <const C extends ReadonlyArray<string>>(
    name: string,
    choices: C,
    description: string,
    fallback: C[number],
    info: FlagInfo = {},
  ): Flag<C[number]> =>
    make(
      name,
      "choice",
      description,
      { ...info, choices, value: info.value ?? "NAME", default: info.default ?? fallback },
      Options.withDefault(Options.choice(name, choices), fallback),
    ),
}

export const arg = {
  required: (name: string, description: string): Arg<string> => ({
    doc: { name, description, optional: false },
    arg: Args.text({ name }),
  }),
  optional: (name: string, description: string): Arg<Option.Option<string>> => ({
    doc: { name, description, optional: true },
    arg: Args.optional(Args.text({ name })),
  }),
}
