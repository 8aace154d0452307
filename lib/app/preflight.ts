/**
 * What start checks before it binds anything, and what `check-config` checks without
 * connecting anywhere — the same code for both: every file an output writes (its file, the
 * dead-letter file of a network output) can be created or appended to by this process.
 *
 * @module
 */
import type { OutputSpec } from "../outputs/output_spec.ts";
import { deadLetterPathOf } from "../outputs/dead_letter.ts";
import { permissionHint, refuseWriteThroughSymlink } from "../_permissions.ts";

/** One problem found by {@linkcode preflight}. */
export interface PreflightProblem {
  /** The output at fault, as the caller names it (e.g. `outputs[2]`). */
  source: string;
  /** What is wrong and what to do. */
  message: string;
}

/**
 * Checks that every file the outputs will write can be written: `outputs` are the enabled
 * outputs with the name to report them by. Returns every problem (empty when none). Creates
 * nothing that stays: a missing file is created and removed again.
 */
export function preflight(
  outputs: readonly { spec: OutputSpec; source: string }[],
): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  for (const { spec, source } of outputs) {
    if (spec.kind === "file") {
      const why = cannotWrite(spec.target);
      if (why) {
        problems.push({
          source,
          message: `cannot open output file ${spec.target}: ${why}; or write the output elsewhere`,
        });
      }
    }
    const deadLetter = deadLetterPathOf(spec);
    if (deadLetter !== undefined) {
      const why = cannotWrite(deadLetter);
      if (why) {
        problems.push({
          source,
          message: `cannot write the dead-letter file ${deadLetter}: ${why}; or set` +
            ` dead_letter=PATH to a file this process may write (e.g. under /tmp/vmq-sidecar)`,
        });
      }
    }
  }
  return problems;
}

/** Why `path` cannot be appended to (created when missing), or "" when it can. */
function cannotWrite(path: string): string {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  if (Deno.permissions.querySync({ name: "write", path }).state !== "granted") {
    return "no write permission" +
      permissionHint(new Deno.errors.NotCapable("Requires write access"), "write", path);
  }
  try {
    refuseWriteThroughSymlink(path); // before the probe below would create a file there
  } catch (e) {
    return "no write permission where it leads" + permissionHint(e, "write", path);
  }
  try {
    // A FIFO, a device or a socket is not a file the output creates (opening a FIFO with no
    // reader would block for ever): not checked.
    const st = Deno.statSync(path);
    if (!st.isFile && !st.isDirectory) return "";
  } catch { /* missing (or not stat-able): the opens below say why */ }
  try {
    Deno.openSync(path, { append: true }).close(); // exists: nothing is changed
    return "";
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return describe(e, path);
  }
  try {
    Deno.openSync(path, { write: true, createNew: true }).close();
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return ""; // created meanwhile
    if (e instanceof Deno.errors.NotFound) {
      return `directory ${dir} does not exist: create it (mkdir -p ${dir}; the systemd unit's` +
        ` StateDirectory= and LogsDirectory= create /var/lib/vmq-sidecar and /var/log/vmq-sidecar)`;
    }
    return describe(e, dir);
  }
  try {
    Deno.removeSync(path);
  } catch { /* it was created by this check; leaving it empty is harmless */ }
  return "";
}

function describe(e: unknown, path: string): string {
  if (e instanceof Deno.errors.PermissionDenied) {
    return `${path} is not writable for this user (${(e as Error).message})`;
  }
  if (e instanceof Deno.errors.IsADirectory) return `${path} is a directory`;
  return (e as Error).message;
}
