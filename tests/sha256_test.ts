// The event id's SHA-256 (lib/outputs/_sha256.ts) against WebCrypto, across block boundaries.
import { assertEquals } from "./_assert.ts";
import { bodyId, eventId, sha256Hex } from "../lib/internal.ts";
import { sha256Id } from "./_servers.ts";

Deno.test("sha256Hex equals WebCrypto SHA-256 for 0..300 bytes and 1 MiB; eventId and bodyId are its first 128 bits", async () => {
  const sizes = [...Array.from({ length: 301 }, (_, i) => i), 1 << 20];
  for (const n of sizes) {
    const data = new Uint8Array(n).map((_, i) => (i * 131 + n * 7) & 255);
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const want = [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
    assertEquals(sha256Hex(data), want, `${n} bytes`);
    assertEquals(eventId(data), await sha256Id(data), `${n} bytes`);
    assertEquals(bodyId(data), eventId(data), `${n} bytes`);
  }
});
