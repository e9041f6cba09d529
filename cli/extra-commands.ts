/** Commands added as the tool grows: export/import, backends, bench. */
import type { Command } from "@effect/cli"

export const extraCommands: ReadonlyArray<Command.Command<string, never, never, unknown>> = []
