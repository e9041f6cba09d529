import { MemoryEventStoreLive } from "../../core/store/memory.ts"
import { storeContract } from "./store-contract.ts"

storeContract("memory", () => MemoryEventStoreLive)
