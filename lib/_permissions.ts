// Private: turns Deno permission errors into instructions for operators.

/** The permission kinds the hints name. */
type Kind = "net" | "write" | "read" | "env";

const KINDS: readonly string[] = ["net", "write", "read", "env"];

/**
 * `host:port` as Deno's `--allow-net` takes it: an IPv6 literal in brackets
 * (`::1:28890` → `[::1]:28890`, `:::8890` → `[::]:8890`); anything else unchanged.
 */
export function netFlagValue(what: string): string {
  if (what.startsWith("[") || (what.match(/:/g)?.length ?? 0) < 2) return what;
  const m = /^(.*):(\d+)$/.exec(what);
  return m ? `[${m[1]}]:${m[2]}` : `[${what}]`;
}

/** An absolute path with `.` and `..` segments resolved (as Deno's checks see it); others unchanged. */
function lexical(path: string): string {
  if (!path.startsWith("/")) return path;
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

const DOING: Record<Kind, string> = {
  net: "reaching it",
  write: "writing it",
  read: "reading it",
  env: "reading it",
};

/**
 * A hint to append to an error message when `e` is a missing Deno permission. The kind and
 * resource come from Deno's message (`Requires read access to "/x"`) when it has them — a
 * write can need a read (a path through a symlink is checked where it leads) — else from
 * `kind` and `what` (what the caller was doing).
 */
export function permissionHint(e: unknown, kind: Kind, what: string): string {
  if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
    return "";
  }
  if (e instanceof Deno.errors.PermissionDenied && !/Requires|--allow/.test(e.message)) return "";
  const said = /Requires (\w+) access(?: to "([^"]*)")?/.exec(e.message);
  let lacks = kind, resource = kind === "net" ? netFlagValue(what) : lexical(what);
  if (said && KINDS.includes(said[1])) {
    lacks = said[1] as Kind;
    if (said[2]) resource = lacks === "net" ? netFlagValue(said[2]) : lexical(said[2]);
  }
  const notes: string[] = [];
  if (resource !== what && (lacks === "read" || lacks === "write") && what.startsWith("/")) {
    notes.push(`${what} leads there`);
  }
  if (lacks !== kind) notes.push(`${DOING[kind]} needs --allow-${kind} there as well`);
  return `\n  this binary lacks --allow-${lacks} for ${resource}${
    notes.length ? ` (${notes.join("; ")})` : ""
  }: add it to permissions.default.${lacks} in deno.json and rebuild (deno task compile), or` +
    ` run from source with deno run -P --allow-${lacks}=${resource} main.ts (see README,` +
    ` "Permissions")`;
}

/**
 * Where `path` leads once symlinks are followed — in any existing directory on the way, or
 * the file itself, dangling or not (bounded) — as an absolute path; undefined when that
 * cannot be told (no read permission to look): the open itself decides then.
 */
function whereItLeads(path: string): string | undefined {
  let p: string;
  try {
    p = lexical(path.startsWith("/") ? path : `${Deno.cwd()}/${path}`);
  } catch {
    return undefined;
  }
  for (let hops = 0; hops < 40; hops++) {
    const slash = p.lastIndexOf("/");
    const dir = p.slice(0, slash) || "/", name = p.slice(slash + 1);
    let realDir: string;
    try {
      realDir = Deno.realPathSync(dir);
    } catch (e) {
      // Resolving it needs read access where it leads: that place is named (a directory
      // reached through a symlink, outside the permitted ones). Missing: opening fails anyway.
      if (!(e instanceof Deno.errors.NotCapable)) return undefined;
      const there = /Requires read access to "([^"]*)"/.exec(e.message)?.[1] ?? dir;
      return lexical(`${there}/${name}`);
    }
    const full = realDir === "/" ? `/${name}` : `${realDir}/${name}`;
    let target: string;
    try {
      if (!Deno.lstatSync(full).isSymlink) return full;
      target = Deno.readLinkSync(full);
    } catch {
      return full; // missing (created there), or not to be looked at: that is where it leads
    }
    p = lexical(target.startsWith("/") ? target : `${realDir}/${target}`);
  }
  return undefined;
}

/**
 * Throws `Deno.errors.NotCapable` (naming `--allow-write` and where the path leads) when
 * `path` leads through a symlink to a place this process may not write. Deno checks write
 * permissions on the path as given, so a symlink in a permitted directory (or a symlinked
 * directory) would otherwise let a write escape it. Call before opening a file for writing.
 */
export function refuseWriteThroughSymlink(path: string): void {
  const leads = whereItLeads(path);
  if (leads === undefined) return;
  if (Deno.permissions.querySync({ name: "write", path: leads }).state === "granted") return;
  throw new Deno.errors.NotCapable(
    `Requires write access to "${leads}", run again with the --allow-write flag`,
  );
}
