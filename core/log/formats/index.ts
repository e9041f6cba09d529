/** core/log/formats: the log files this tool reads and writes, one module per format. */
export { DETECTRON2_MEDIAN_WINDOW, detectron2Reader } from "./detectron2.ts"
export { parseJsonlLine, toJsonlLine } from "./jsonl.ts"
export { fileDigest, fileLines, LogFileError, toInputError } from "./lines.ts"
export {
  eventFromRecord,
  MLLOG_TOKEN,
  type MllogExporter,
  type MllogRecord,
  makeMllogExporter,
  mllogJson,
  mlperfReader,
  type OurLine,
  parseMllogLine,
  parseOurMllogLine,
} from "./mllog.ts"
export { mmengineReader } from "./mmengine.ts"
export { type ObservedLog, type ObservedReader, observedRunId, readObserved } from "./observed-reader.ts"
export {
  isLogFileArgument,
  type LogFile,
  type LogFormat,
  logEnvelopes,
  logEvents,
  type ObservedLogFile,
  type OpenOptions,
  openLog,
  type RecordedLog,
  sniffFile,
} from "./read.ts"
export {
  type FileKind,
  FORMAT_WORDS,
  LOG_FORMAT_CHOICES,
  type LogFormatChoice,
  type ReadFormat,
  type Sniffed,
  sniffText,
} from "./sniff.ts"
