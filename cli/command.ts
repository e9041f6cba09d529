/**
 * A command: its @effect/cli parser, built from the same flag and argument definitions as its
 * help page, plus a summary, a longer description and examples for that page.
 */
import * as Command from "@effect/cli/Command"
import type { Effect } from "effect"
import type { Arg, ArgDoc, Flag, FlagDoc } from "./flags.ts"

export interface CommandDoc {
  readonly name: string
  /** One line, shown in the command list. */
  readonly summary: string
  /** Paragraphs shown on the command's own help page. */
  readonly details: ReadonlyArray<string>
  readonly args: ReadonlyArray<ArgDoc>
  readonly flags: ReadonlyArray<FlagDoc>
  readonly examples: ReadonlyArray<string>
  readonly subcommands: ReadonlyArray<CommandDoc>
}

type ArgValues<A> = { readonly [K in keyof A]: A[K] extends Arg<infer V> ? V : never }
type FlagValues<F> = { readonly [K in keyof F]: F[K] extends Flag<infer V> ? V : never }

export interface CliCommand {
  readonly doc: CommandDoc
  // biome-ignore lint/suspicious/noExplicitAny: the parsers of different commands differ in type
  readonly command: Command.Command<string, any, any, any>
}

export const defineCommand = <
  // biome-ignore lint/suspicious/noExplicitAny: any flag value type
  A extends Record<string, Arg<any>>,
  // biome-ignore lint/suspicious/noExplicitAny: any flag value type
  F extends Record<string, Flag<any>>,
  R,
  E,
>(def: {
  readonly name: string
  readonly summary: string
  readonly details?: ReadonlyArray<string>
  readonly args: A
  readonly flags: F
  readonly examples: ReadonlyArray<string>
  readonly run: (input: ArgValues<A> & FlagValues<F>) => Effect.Effect<void, E, R>
}): CliCommand => {
  const config: Record<string, unknown> = {}
  for (const [k, a] of Object.entries(def.args)) config[k] = a.arg
  for (const [k, f] of Object.entries(def.flags)) config[k] = f.option
  return {
    doc: {
      name: def.name,
      summary: def.summary,
      details: def.details ?? [],
      args: Object.values(def.args).map((a) => a.doc),
      flags: Object.values(def.flags).map((f) => f.doc),
      examples: def.examples,
      subcommands: [],
    },
    // biome-ignore lint/suspicious/noExplicitAny: config is built from A and F above
    command: Command.make(def.name, config as any, def.run as any).pipe(Command.withDescription(def.summary)),
  }
}

/** A command whose work is done by its subcommands (`interleave sim fit`). */
export const commandGroup = (
  name: string,
  summary: string,
  children: ReadonlyArray<CliCommand>,
  examples: ReadonlyArray<string> = [],
): CliCommand => ({
  doc: {
    name,
    summary,
    details: [],
    args: [],
    flags: [],
    examples,
    subcommands: children.map((c) => c.doc),
  },
  command: Command.make(name).pipe(
    Command.withDescription(summary),
    // biome-ignore lint/suspicious/noExplicitAny: children differ in type
    Command.withSubcommands(children.map((c) => c.command) as any),
  ),
})
