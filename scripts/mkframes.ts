/**
 * Writes a frames file (what the plugin sends: u32 big-endian length + `Any`, repeated):
 * a realistic mix, only on_publish with a fixed payload size, or the conformance vectors.
 *
 *   deno run -P=bench scripts/mkframes.ts --kind mix --n 2000000 --out /tmp/vmq-sidecar/mix.bin
 *   deno run -P=bench scripts/mkframes.ts --kind publish --payload 4096 --n 100000 --out p.bin
 *   deno run -P=bench scripts/mkframes.ts --kind vectors --out vectors.bin
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MixGenerator } from "./_mix.ts";

/** Options of {@linkcode writeFramesFile}. */
export interface FramesFileOptions {
  /** `mix` (default), `publish` (on_publish only) or `vectors` (tests/fixtures/vectors). */
  kind?: "mix" | "publish" | "vectors";
  /** Frames to write (mix/publish; default 100000). */
  n?: number;
  /** Fixed payload size (sets both min and max). */
  payload?: number;
  /** Smallest payload (default 64). */
  payloadMin?: number;
  /** Largest payload (default 512). */
  payloadMax?: number;
  /** PRNG seed (default 1). */
  seed?: number;
}

/** What {@linkcode writeFramesFile} wrote. */
export interface FramesFileInfo {
  /** Frames written. */
  frames: number;
  /** Bytes written. */
  bytes: number;
}

const VECTORS_DIR = new URL("../tests/fixtures/vectors/", import.meta.url);

/** Writes the frames file `path` (replacing it). */
export async function writeFramesFile(
  path: string,
  o: FramesFileOptions = {},
): Promise<FramesFileInfo> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(1 << 20);
  let pos = 0, frames = 0, bytes = 0;
  const put = async (f: Uint8Array) => {
    if (pos + f.length > chunk.length) {
      await writeAll(file, chunk.subarray(0, pos));
      pos = 0;
    }
    if (f.length > chunk.length) await writeAll(file, f);
    else {
      chunk.set(f, pos);
      pos += f.length;
    }
    frames++;
    bytes += f.length;
  };
  try {
    if (o.kind === "vectors") {
      const names = [...Deno.readDirSync(VECTORS_DIR)].map((e) => e.name)
        .filter((n) => n.endsWith(".bin")).sort();
      for (const name of names) await put(Deno.readFileSync(new URL(name, VECTORS_DIR)));
    } else {
      const gen = new MixGenerator({
        seed: o.seed,
        kind: o.kind ?? "mix",
        payloadMin: o.payload ?? o.payloadMin,
        payloadMax: o.payload ?? o.payloadMax,
      });
      for (const kind of gen.kinds(o.n ?? 100_000)) await put(gen.frame(kind));
    }
    await writeAll(file, chunk.subarray(0, pos));
  } finally {
    file.close();
  }
  return { frames, bytes };
}

async function writeAll(file: Deno.FsFile, b: Uint8Array): Promise<void> {
  for (let off = 0; off < b.length;) off += await file.write(b.subarray(off));
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      kind: { type: "string", default: "mix" },
      n: { type: "string", default: "100000" },
      payload: { type: "string" },
      "payload-min": { type: "string" },
      "payload-max": { type: "string" },
      seed: { type: "string", default: "1" },
      out: { type: "string", short: "o" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help || !v.out || !["mix", "publish", "vectors"].includes(v.kind)) {
    console.error(
      "usage: mkframes.ts --out FILE [--kind mix|publish|vectors] [--n N] [--payload BYTES]\n" +
        "                   [--payload-min BYTES] [--payload-max BYTES] [--seed N]",
    );
    Deno.exit(v.help ? 0 : 2);
  }
  const num = (s: string | undefined) => s === undefined ? undefined : Number(s);
  const t0 = performance.now();
  const info = await writeFramesFile(v.out, {
    kind: v.kind as FramesFileOptions["kind"],
    n: num(v.n),
    payload: num(v.payload),
    payloadMin: num(v["payload-min"]),
    payloadMax: num(v["payload-max"]),
    seed: num(v.seed),
  });
  console.log(
    `file=${v.out} frames=${info.frames} bytes=${info.bytes} avg_frame_bytes=${
      (info.bytes / info.frames).toFixed(1)
    } seconds=${((performance.now() - t0) / 1000).toFixed(1)}`,
  );
}
