/**
 * Former name of the per-output delivery (now {@linkcode Delivery} in pipeline/delivery.ts and
 * `LocalDelivery` in outputs/local/local_delivery.ts): type names kept for the modules not
 * moved yet.
 *
 * @module
 */
import type { Delivery } from "./delivery.ts";

export type {
  /** @deprecated Use {@linkcode DeliveryOptions}. */
  DeliveryOptions as QueueOptions,
  OnFull,
  /** @deprecated Use {@linkcode OutputCounters}. */
  OutputCounters as QueueStats,
} from "./delivery.ts";

/** @deprecated Use {@linkcode Delivery}. */
export type OutputQueue = Delivery;
