/**
 * What `Sidecar.start({ handlers })` adds to the pipeline: one output per handler (its hooks,
 * topic filter and buffer budget) whose delivery is a {@linkcode HandlerDelivery}.
 *
 * @module
 */
import type { Buffer } from "../pipeline/buffer.ts";
import type { DeliveryFactory } from "../pipeline/delivery.ts";
import type { OutputConfig } from "../pipeline/router.ts";
import { topicFilter } from "../pipeline/topic_filter.ts";
import { DeadLetterFile, DEFAULT_DEAD_LETTER } from "../outputs/dead_letter.ts";
import { deliveryOf } from "../outputs/local/local_delivery.ts";
import type { Handler } from "../handlers/handler.ts";
import {
  HANDLER_BUFFER_BYTES,
  HandlerDelivery,
  HandlerSink,
} from "../handlers/handler_delivery.ts";

/** Makes the buffer of a handler output (default: a memory buffer of its `bufferBytes`). */
export type HandlerBufferFactory = (name: string, maxBytes: number) => Buffer;

/** One pipeline output per handler; throws a TypeError for a name used twice. */
export function handlerOutputs(
  handlers: readonly Handler[],
  taken: readonly string[] = [],
): OutputConfig[] {
  const names = new Set(taken);
  return handlers.map((h) => {
    const spec = h.spec;
    if (names.has(spec.name)) {
      throw new TypeError(`handler name ${JSON.stringify(spec.name)} is used twice`);
    }
    names.add(spec.name);
    const sink = new HandlerSink(
      h,
      new DeadLetterFile(spec.deadLetter ?? DEFAULT_DEAD_LETTER, spec.name),
    );
    return {
      sink,
      hooks: new Set(h.hooks),
      filter: spec.topics ? topicFilter(spec.topics) : undefined,
      queue: { maxBytes: spec.bufferBytes ?? HANDLER_BUFFER_BYTES, onFull: "block" },
    };
  });
}

/** {@linkcode deliveryOf}, with a {@linkcode HandlerDelivery} for handler outputs. */
export function deliveryWithHandlers(buffer?: HandlerBufferFactory): DeliveryFactory {
  return (sink, options) => {
    if (!(sink instanceof HandlerSink)) return deliveryOf(sink, options);
    const maxBytes = options.maxBytes ?? HANDLER_BUFFER_BYTES;
    return new HandlerDelivery(sink, options, buffer?.(sink.name, maxBytes));
  };
}
