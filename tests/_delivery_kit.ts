// Shared by the delivery, local delivery and router tests: a recording sink, numbered
// on_publish frames, refusals and dead-letter files.
import {
  type DeadLetter,
  type DeadLetterFile,
  type DeadLetterWriter,
  DELIVERED,
  forEachFrame,
  type OutputBatch,
  type SendResult,
  type Sink,
} from "../lib/internal.ts";
import { eventBody, fixtureVectors } from "./_vectors.ts";

/** A sink that records what it acknowledged; `gate` makes sends wait, `failures` makes them fail. */
export class RecordingSink implements Sink {
  readonly name: string;
  readonly frames: Uint8Array[] = [];
  attempts = 0;
  failures = 0;
  gate: Promise<void> | undefined;
  closed = false;
  constructor(name = "recording") {
    this.name = name;
  }
  async send(batch: OutputBatch): Promise<SendResult> {
    this.attempts++;
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("destination unavailable");
    }
    forEachFrame(batch, (f) => this.frames.push(f.slice()));
    return DELIVERED;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

export function publish(i: number, payloadBytes = 100): Uint8Array {
  const e = fixtureVectors().find((v) => v.name === "027_on_publish_typical")!.expected.event!;
  return eventBody("on_publish", {
    ...e,
    client_id: `q-${i}`,
    payload: new Uint8Array(payloadBytes),
  });
}

export const clientIds = (frames: Uint8Array[]) =>
  frames.map((f) => /q-\d+/.exec(new TextDecoder().decode(f))![0]);

/** A refusal of `events` events (body: as many JSON lines). */
export function letter(events: number, reason = "HTTP 400 Bad Request"): DeadLetter {
  return {
    reason,
    status: 400,
    events,
    contentType: "application/x-ndjson",
    body: new TextEncoder().encode("{}\n".repeat(events)),
  };
}

/** `file`, except that appending a refusal of one event fails (a disk full, for that one). */
export function failingOneEventLetters(file: DeadLetterFile): DeadLetterWriter {
  return {
    path: file.path,
    checkPermission: () => file.checkPermission(),
    append: (d) => d.events === 1 ? Promise.reject(new Error("disk full")) : file.append(d),
    close: () => file.close(),
  };
}

/** The records of a dead-letter file. */
export function deadLetters(path: string): { events: number; reason: string }[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}
