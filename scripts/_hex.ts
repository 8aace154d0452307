// Private: lowercase hex of bytes.

/** Lowercase hex encoding of `bytes`. */
export function encodeHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
