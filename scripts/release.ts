/**
 * Builds the release binaries with the compile tasks of deno.json (x86_64 and aarch64 Linux,
 * the "default" permission set embedded) and writes `dist/SHA256SUMS`.
 *
 *   deno task release
 *
 * `deno compile` downloads its `denort` runtime per target on first use, so this needs the
 * network access to Deno's release downloads (see README, "Release binaries").
 *
 * @module
 */
import { encodeHex } from "./_hex.ts";

const TASKS: Record<string, string> = {
  "compile": "dist/vmq-sidecar-x86_64-linux",
  "compile:aarch64": "dist/vmq-sidecar-aarch64-linux",
};

if (import.meta.main) {
  await Deno.mkdir("dist", { recursive: true });
  const sums: string[] = [];
  for (const [task, output] of Object.entries(TASKS)) {
    console.error(`deno task ${task}`);
    const { code } = await new Deno.Command("deno", { args: ["task", task] }).spawn().status;
    if (code !== 0) {
      console.error(`deno task ${task} failed (exit ${code})`);
      Deno.exit(1);
    }
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(output));
    sums.push(`${encodeHex(new Uint8Array(digest))}  ${output.slice("dist/".length)}`);
  }
  await Deno.writeTextFile("dist/SHA256SUMS", sums.join("\n") + "\n");
  console.log(sums.join("\n"));
}
