// Private: turns Deno permission errors into instructions for operators.

/** A hint to append to an error message when `e` is a missing Deno permission. */
export function permissionHint(
  e: unknown,
  kind: "net" | "write" | "read" | "env",
  what: string,
): string {
  if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
    return "";
  }
  if (e instanceof Deno.errors.PermissionDenied && !/Requires|--allow/.test(e.message)) return "";
  return `\n  this binary lacks --allow-${kind} for ${what}: add it to permissions.default.${kind} in` +
    ` deno.json and rebuild (deno task compile), or run from source with` +
    ` deno run -P --allow-${kind}=${what} main.ts (see README, "Permissions")`;
}
