/**
 * emlab/report: the HTML report (one self-contained file with Vega-Lite plots) and the
 * read-only local viewer over run stores and result files.
 */
export { escapeHtml, jsonForScript, vegaBundle } from "./assets.ts";
export {
  type AuditReportLike,
  addAudit,
  addResultLines,
  addStoreRuns,
  DASHBOARD_CONTEXTS,
  DASHBOARD_TOKENS,
  type EvalRow,
  emptyReport,
  type LatentCard,
  type ReportData,
  type StoreOptions,
} from "./data.ts";
export { buildReportHtml } from "./html.ts";
export {
  collectReport,
  type DemoReportOptions,
  REPORT_SIZE_LIMIT,
  type ReportSources,
  readResultLines,
  writeDemoReport,
  writeLinesReport,
  writeReportHtml,
} from "./report.ts";
export { listRuns, openStoreReadOnly, runSamples, type SampleView, summariseRun, verdictOf } from "./runs.ts";
export { latentHistogramPlot, type Plot, reportPlots } from "./specs.ts";
export { startViewer, type Viewer, type ViewerOptions } from "./viewer/server.ts";
