import { Layer, TestClock } from "effect"
import { makeMemorySweepQueue, SweepQueue } from "../../core/queue/index.ts"
import { queueContract } from "./queue-contract.ts"

queueContract("memory", () => Layer.effect(SweepQueue, makeMemorySweepQueue()), {
  clock: "test",
  wait: (ms) => TestClock.adjust(ms),
})
