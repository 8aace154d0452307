/**
 * `vmq-sidecar check-config FILE`: validates a config file (and flags over it) exactly as a
 * start would, checks this host's output and dead-letter paths, prints the effective
 * configuration (every default shown, secrets masked). Exit codes: 0 valid, 2 invalid.
 *
 * @module
 */
import { parseChoice } from "../../parse.ts";
import { parseSettingFlags } from "../settings.ts";
import {
  type ConfigFile,
  type EffectiveConfig,
  readConfigFile,
  renderEffectiveConfig,
  resolveConfig,
} from "../config_file.ts";
import { ConfigError } from "../../errors.ts";
import { preflight } from "../preflight.ts";

const CHECK_FLAGS = {
  emit: { type: "string" },
  "file-only": { type: "boolean" },
} as const;

/**
 * The {@linkcode preflight} problems of the enabled outputs of `effective`, one line each:
 * `FILE:LINE: outputs[N]: …` for outputs of a config file, `--out "…": …` for flags.
 */
function preflightLines(effective: EffectiveConfig, file: ConfigFile | undefined): string[] {
  const problems = preflight(effective.outputs.filter((o) => o.enabled));
  return problems.map((p) => {
    const line = file?.lines.get(`${p.source}.url`) ?? file?.lines.get(p.source);
    const at = file && p.source.startsWith("outputs[")
      ? `${file.path}${line ? `:${line}` : ""}: `
      : "";
    return `${at}${p.source}: ${p.message}`;
  });
}

/** `check-config FILE [--emit json|toml] [flags]`: validates and prints the effective config. */
export function runCheckConfig(args: string[]): number {
  try {
    const { values, positionals, overrides, config } = parseSettingFlags(args, CHECK_FLAGS);
    if (values.help) {
      console.log(
        "Usage: vmq-sidecar check-config FILE [--emit json|toml] [--file-only] [flags]\n\n" +
          "Validates FILE (and any flags given, which override it, as when running) without\n" +
          "connecting anywhere, checks what start checks on this host (every output file and\n" +
          "dead-letter file can be written: directory exists and is writable), and prints the\n" +
          "effective configuration with secrets masked. --file-only skips the checks of this\n" +
          "host (for a file meant for another one).\n" +
          "From a clone: deno task check-config FILE (may read FILE wherever it is).\n" +
          "Exit status: 0 valid, 2 invalid (the message names the line and key).",
      );
      return 0;
    }
    const path = positionals[0] ?? config;
    if (positionals.length > 1 || path === undefined) {
      throw new ConfigError(
        "check-config",
        "expected one FILE, e.g. check-config /etc/vmq-sidecar/vmq-sidecar.toml",
      );
    }
    const emit = values.emit === undefined
      ? "json"
      : parseChoice("--emit", String(values.emit), ["json", "toml"] as const);
    const file = readConfigFile(path, "check-config");
    const effective = resolveConfig(overrides, file);
    const problems = values["file-only"] ? [] : preflightLines(effective, file);
    if (problems.length) {
      for (const p of problems) console.error(`vmq-sidecar: ${p}`);
      return 2;
    }
    Deno.stdout.writeSync(new TextEncoder().encode(renderEffectiveConfig(effective, emit)));
    console.error(`vmq-sidecar: ${path}: valid`);
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`vmq-sidecar: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
