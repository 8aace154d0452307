/** The version of vmq-sidecar: `--version`, and the `version` label of `vmq_sidecar_build_info`. */
export const VERSION = "0.1.0";
