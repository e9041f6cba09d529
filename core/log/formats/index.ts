/** core/log/formats: the log files this tool reads and writes, one module per format. */
export * from "./detectron2.ts"
export * from "./jsonl.ts"
export * from "./lines.ts"
export * from "./mllog.ts"
export * from "./mmengine.ts"
export * from "./observed-reader.ts"
export * from "./read.ts"
export * from "./sniff.ts"
