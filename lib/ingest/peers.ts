/**
 * Who may connect: CIDR ranges (IPv4 and IPv6) parsed strictly, and a matcher for peer
 * addresses. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) match IPv4 ranges.
 *
 * @module
 */

/** The default allow list: loopback only. */
export const LOOPBACK_PEERS: readonly string[] = ["127.0.0.0/8", "::1/128"];

/** One parsed CIDR range. */
export interface Cidr {
  /** Address family. */
  family: 4 | 6;
  /** The network address as a big integer (32 or 128 bits). */
  network: bigint;
  /** Prefix length. */
  prefix: number;
  /** The range in canonical text, e.g. `10.0.0.0/8`. */
  text: string;
}

/** Parses a dotted-quad IPv4 address strictly; undefined if it is not one. */
function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

/** Parses an IPv6 address (with `::` and an optional trailing IPv4); undefined if not one. */
function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.split("::").length > 2) return undefined;
  let tail4: bigint | undefined;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    tail4 = parseV4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    text = s.slice(0, lastColon + 1) + "0:0";
  }
  const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (g: string) => (g === "" ? [] : g.split(":"));
  const h = groups(head), t = rest === undefined ? [] : groups(rest);
  const all = rest === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (all.length !== 8 || (rest !== undefined && h.length + t.length > 7)) return undefined;
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail4 !== undefined) n = (n & ~0xffffffffn) | tail4;
  return n;
}

function v4Text(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
}

function v6Text(n: bigint): string {
  const g: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) g.push(((n >> s) & 0xffffn).toString(16));
  // RFC 5952: the longest run of two or more zero groups (the first of equals) becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === "0") j++;
    if (j - i > bestLen) (best = i), (bestLen = j - i);
    i = j > i ? j : i + 1;
  }
  if (best < 0) return g.join(":");
  return `${g.slice(0, best).join(":")}::${g.slice(best + bestLen).join(":")}`;
}

/**
 * Parses one CIDR range (`10.0.0.0/8`, `fd00::/8`; a bare address is a single host). Throws
 * an `Error` saying what is wrong: host bits set, prefix out of range, not an address.
 */
export function parseCidr(value: string): Cidr {
  const s = value.trim();
  const slash = s.indexOf("/");
  const addr = slash < 0 ? s : s.slice(0, slash);
  const pfx = slash < 0 ? undefined : s.slice(slash + 1);
  const v4 = parseV4(addr);
  const v6 = v4 === undefined ? parseV6(addr) : undefined;
  if (v4 === undefined && v6 === undefined) {
    throw new Error(
      `${
        JSON.stringify(value)
      } is not an IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, fd00::/8)`,
    );
  }
  const family = v4 !== undefined ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  if (pfx !== undefined && !/^(0|[1-9]\d{0,2})$/.test(pfx)) {
    throw new Error(
      `${JSON.stringify(value)}: the prefix length must be a number from 0 to ${bits}`,
    );
  }
  const prefix = pfx === undefined ? bits : Number(pfx);
  if (prefix > bits) {
    throw new Error(`${JSON.stringify(value)}: the prefix length must be from 0 to ${bits}`);
  }
  const network = (v4 ?? v6)!;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((network & hostMask) !== 0n) {
    const net = network & ~hostMask;
    throw new Error(
      `${JSON.stringify(value)} has host bits set; did you mean ${
        family === 4 ? v4Text(net) : v6Text(net)
      }/${prefix}?`,
    );
  }
  return {
    family,
    network,
    prefix,
    text: `${family === 4 ? v4Text(network) : v6Text(network)}/${prefix}`,
  };
}

/** Whether a peer address (IPv4 or IPv6 text, e.g. from `remoteAddr.hostname`) is in `ranges`. */
export function peerAllowed(ranges: readonly Cidr[], hostname: string): boolean {
  let v4 = parseV4(hostname);
  const v6 = v4 === undefined ? parseV6(hostname.replace(/%.*$/, "")) : undefined;
  if (v6 !== undefined && v6 >> 32n === 0xffffn) v4 = v6 & 0xffffffffn; // IPv4-mapped
  for (const r of ranges) {
    const n = r.family === 4 ? v4 : v6;
    if (n === undefined) continue;
    const bits = r.family === 4 ? 32 : 128;
    if (n >> BigInt(bits - r.prefix) === r.network >> BigInt(bits - r.prefix)) return true;
  }
  return false;
}

/** Whether `hostname` (a literal address or `localhost`) is a loopback address. */
export function isLoopbackHost(hostname: string): boolean {
  if (hostname === "localhost") return true;
  return peerAllowed(LOOPBACK_PEERS.map(parseCidr), hostname);
}
