// Private: field tables of every event message, built once from the generated descriptors.
// Both JSON writers (wire → JSON and typed event → JSON) walk these, so the field order,
// names and kinds of the JSON form come from the schema in exactly one place.
import { SCHEMA_JSON } from "./_generated.ts";
import { HOOKS, MESSAGE_NAMES } from "./hooks.ts";

/** Field kinds the eventssidecar.v1 schema uses. */
export enum Kind {
  String,
  Bytes,
  Int32,
  Bool,
  Enum,
  Timestamp,
  Message,
  RepeatedString,
  RepeatedMessage,
  MapStringString,
}

export interface FieldTable {
  /** Proto field number. */
  no: number;
  /** Proto field name (snake_case), also the JSON key. */
  name: string;
  kind: Kind;
  /** Expected wire type of one value of this field. */
  wireType: number;
  /** `,"name":` as UTF-8 (the leading comma is skipped for the first key of a nested object). */
  key: Uint8Array;
  /** Sub-message table for Message / RepeatedMessage. */
  sub?: MessageTable;
  /** Enum value names by number, for Enum. */
  enumNames?: Map<number, string>;
  /** Enum value names as quoted JSON bytes by number, for Enum. */
  enumJson?: Map<number, Uint8Array>;
}

export interface MessageTable {
  name: string;
  fields: FieldTable[];
  /** Field index by field number (sparse). */
  indexByNo: number[];
  /** Index of the first bytes field, or -1. */
  bytesField: number;
}

// deno-lint-ignore no-explicit-any
type Json = any;
const pkg: Json = SCHEMA_JSON.nested.eventssidecar.nested.v1.nested;
const enc = new TextEncoder();
const tables = new Map<string, MessageTable>();

function lookup(type: string): Json {
  return type === "google.protobuf.Timestamp" ? { timestamp: true } : pkg[type];
}

function buildTable(name: string): MessageTable {
  const existing = tables.get(name);
  if (existing) return existing;
  const def = pkg[name];
  if (!def?.fields) throw new Error(`schema has no message ${name}`);
  const table: MessageTable = { name, fields: [], indexByNo: [], bytesField: -1 };
  tables.set(name, table);
  for (const [fieldName, f] of Object.entries<Json>(def.fields)) {
    const target = lookup(f.type);
    let kind: Kind;
    let sub: MessageTable | undefined;
    let enumNames: Map<number, string> | undefined;
    if (f.keyType !== undefined) {
      if (f.keyType !== "string" || f.type !== "string") {
        throw new Error(`${name}.${fieldName}: only map<string,string> is supported`);
      }
      kind = Kind.MapStringString;
    } else if (f.rule === "repeated") {
      if (f.type === "string") kind = Kind.RepeatedString;
      else if (target?.fields) {
        kind = Kind.RepeatedMessage;
        sub = buildTable(f.type);
      } else throw new Error(`${name}.${fieldName}: unsupported repeated ${f.type}`);
    } else if (f.type === "string") kind = Kind.String;
    else if (f.type === "bytes") kind = Kind.Bytes;
    else if (f.type === "int32") kind = Kind.Int32;
    else if (f.type === "bool") kind = Kind.Bool;
    else if (target?.timestamp) kind = Kind.Timestamp;
    else if (target?.values) {
      kind = Kind.Enum;
      enumNames = new Map(
        Object.entries<number>(target.values).map(([k, v]) => [v, k]),
      );
    } else if (target?.fields) {
      kind = Kind.Message;
      sub = buildTable(f.type);
    } else throw new Error(`${name}.${fieldName}: unsupported type ${f.type}`);
    const wireType = kind === Kind.Int32 || kind === Kind.Bool || kind === Kind.Enum ? 0 : 2;
    if (kind === Kind.Bytes && table.bytesField < 0) table.bytesField = table.fields.length;
    table.indexByNo[f.id] = table.fields.length;
    table.fields.push({
      no: f.id,
      name: fieldName,
      kind,
      wireType,
      key: enc.encode(`,${JSON.stringify(fieldName)}:`),
      sub,
      enumNames,
      enumJson: enumNames &&
        new Map([...enumNames].map(([n, s]) => [n, enc.encode(JSON.stringify(s))])),
    });
  }
  return table;
}

/** The message table of each hook, by hook index. */
export const HOOK_TABLES: readonly MessageTable[] = HOOKS.map((h) => buildTable(MESSAGE_NAMES[h]));
