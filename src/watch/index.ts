// emlab/watch: persona signals on a probe set, calibration and alerts over checkpoints, and
// data screening by the projection difference (ΔP) of a dataset's answers.
export * from "./calibrate.ts";
export * from "./screen.ts";
export * from "./signals.ts";
export * from "./timeline.ts";
