// Private: where each key of a TOML document is, so that config errors can name the line.
// A tolerant line scanner run after smol-toml accepted the document (so the syntax is known
// to be valid): it follows [table] and [[array]] headers and `key = value` lines, skipping
// multi-line strings, arrays and inline tables. Paths look like `listen`, `outputs[2]` (the
// second [[outputs]] table, 1-based) and `outputs[2].queue_bytes`.

const BARE = /^[A-Za-z0-9_-]+/;

/** Parses a dotted TOML key at the start of `s`; returns the parts and the rest. */
function parseKey(s: string): { parts: string[]; rest: string } | null {
  const parts: string[] = [];
  let rest = s;
  for (;;) {
    rest = rest.trimStart();
    let m: RegExpExecArray | null;
    if ((m = BARE.exec(rest))) {
      parts.push(m[0]);
      rest = rest.slice(m[0].length);
    } else if (rest.startsWith('"')) {
      const end = closingQuote(rest, 1);
      if (end < 0) return null;
      try {
        parts.push(JSON.parse(rest.slice(0, end + 1)));
      } catch {
        parts.push(rest.slice(1, end));
      }
      rest = rest.slice(end + 1);
    } else if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) return null;
      parts.push(rest.slice(1, end));
      rest = rest.slice(end + 1);
    } else return null;
    rest = rest.trimStart();
    if (!rest.startsWith(".")) return { parts, rest };
    rest = rest.slice(1);
  }
}

function closingQuote(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return i;
  }
  return -1;
}

/** Scanner state carried across lines of one value. */
interface ValueState {
  depth: number;
  multiline: '"""' | "'''" | null;
}

/** Scans a value (or its continuation) for brackets and multi-line strings. */
function scanValue(s: string, st: ValueState): void {
  let i = 0;
  while (i < s.length) {
    if (st.multiline) {
      const end = s.indexOf(st.multiline, i);
      if (end < 0) return;
      i = end + 3;
      while (s[i] === st.multiline[0]) i++; // up to two quotes may close the string's content
      st.multiline = null;
      continue;
    }
    const c = s[i];
    if (c === "#") return;
    if (s.startsWith('"""', i) || s.startsWith("'''", i)) {
      st.multiline = s.slice(i, i + 3) as '"""' | "'''";
      i += 3;
    } else if (c === '"') {
      const end = closingQuote(s, i + 1);
      i = end < 0 ? s.length : end + 1;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      i = end < 0 ? s.length : end + 1;
    } else {
      if (c === "[" || c === "{") st.depth++;
      else if (c === "]" || c === "}") st.depth--;
      i++;
    }
  }
}

/** Maps every key path of `text` to its 1-based line. */
export function keyLines(text: string): Map<string, number> {
  const lines = text.split(/\r?\n/);
  const out = new Map<string, number>();
  const arrayCounts = new Map<string, number>();
  let table = "";
  const st: ValueState = { depth: 0, multiline: null };
  // Resolves a dotted header to a path, indexing arrays of tables by their current element.
  const resolve = (parts: string[], upto = parts.length) => {
    let path = "";
    for (let i = 0; i < upto; i++) {
      path = path ? `${path}.${parts[i]}` : parts[i];
      const n = arrayCounts.get(path);
      if (n !== undefined && i < upto) path = `${path}[${n}]`;
    }
    return path;
  };
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    if (st.depth > 0 || st.multiline) {
      scanValue(raw, st);
      return;
    }
    const line = raw.trimStart();
    if (line === "" || line.startsWith("#")) return;
    if (line.startsWith("[[")) {
      const k = parseKey(line.slice(2));
      if (!k) return;
      const parent = resolve(k.parts, k.parts.length - 1);
      const base = parent ? `${parent}.${k.parts[k.parts.length - 1]}` : k.parts[0];
      const n = (arrayCounts.get(base) ?? 0) + 1;
      arrayCounts.set(base, n);
      // Elements nested in this one start counting afresh.
      for (const key of arrayCounts.keys()) {
        if (key.startsWith(`${base}[`)) arrayCounts.delete(key);
      }
      table = `${base}[${n}]`;
      out.set(table, lineNo);
      return;
    }
    if (line.startsWith("[")) {
      const k = parseKey(line.slice(1));
      if (!k) return;
      table = resolve(k.parts);
      if (!out.has(table)) out.set(table, lineNo);
      return;
    }
    const k = parseKey(line);
    if (!k || !k.rest.startsWith("=")) return;
    const path = [table, ...k.parts].filter(Boolean).join(".");
    out.set(path, lineNo);
    scanValue(k.rest.slice(1), st);
  });
  return out;
}

/**
 * The line of `path` in `lines`, or of its nearest enclosing key or table (a value inside an
 * inline table or array is reported at its key's line); 0 when unknown.
 */
export function lineOf(lines: ReadonlyMap<string, number>, path: string): number {
  let p = path;
  while (p) {
    const n = lines.get(p) ?? lines.get(`${p}[1]`); // an array of tables: its first table
    if (n !== undefined) return n;
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) return 0;
    p = p.slice(0, cut);
  }
  return 0;
}
