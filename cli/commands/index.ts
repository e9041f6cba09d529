/** Every command, in the order `interleave --help` lists them. */
import type { CliCommand } from "../command.ts"
import { backendsCommand } from "./backends.ts"
import { benchCommand } from "./bench.ts"
import { deleteCommand } from "./delete.ts"
import { diffCommand } from "./diff.ts"
import { exportCommand } from "./export.ts"
import { forkCommand } from "./fork.ts"
import { importCommand } from "./import.ts"
import { planCommand } from "./plan.ts"
import { replayCommand } from "./replay.ts"
import { resumeCommand } from "./resume.ts"
import { runCommand } from "./run.ts"
import { runsCommand } from "./runs.ts"
import { showCommand } from "./show.ts"
import { simCommand } from "./sim.ts"
import { storeCommand } from "./store.ts"
import { studyCommand } from "./study.ts"
import { uiCommand } from "./ui.ts"
import { verifyCommand } from "./verify.ts"

export const commands: ReadonlyArray<CliCommand> = [
  planCommand,
  verifyCommand,
  runCommand,
  runsCommand,
  deleteCommand,
  showCommand,
  resumeCommand,
  forkCommand,
  replayCommand,
  diffCommand,
  exportCommand,
  importCommand,
  benchCommand,
  studyCommand,
  simCommand,
  storeCommand,
  uiCommand,
  backendsCommand,
]
