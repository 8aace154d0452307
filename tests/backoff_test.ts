// pipeline/backoff.ts: the wait between attempts of one output — cut short by the sink's ready
// signal and by close, never shorter than the destination's Retry-After (a flush keeps it).
import { assert, assertEquals } from "./_assert.ts";
import { Backoff } from "../lib/internal.ts";

/** Whether `p` settles within `ms` (bounded: every wait here ends). */
async function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => t = setTimeout(() => r(false), ms));
  const r = await Promise.race([p.then(() => true as const), late]);
  clearTimeout(t);
  return r;
}

Deno.test("backoff: the sink's ready signal ends a long wait at once, and the next wait too when it came first", async () => {
  const b = new Backoff(10_000, 30_000); // a wait of at least 5 s
  const waiting = b.wait(0);
  assertEquals(await settlesWithin(waiting, 50), false, "waits");
  b.ready();
  assert(await settlesWithin(waiting, 2000), "ready ends the wait");
  b.ready(); // the destination is back before the next failure's wait
  assert(await settlesWithin(b.wait(0), 2000), "a wait after ready does not wait");
});

Deno.test("backoff: a flush's wake keeps the destination's Retry-After; a close's ends it", async () => {
  const b = new Backoff(1, 10);
  const waiting = b.wait(60_000); // Retry-After: 60 s
  b.wake(false); // flush
  assertEquals(await settlesWithin(waiting, 100), false, "Retry-After still holds");
  b.ready(); // a reconnect does not override it either
  assertEquals(await settlesWithin(waiting, 100), false, "Retry-After still holds");
  b.wake(true); // close
  assert(await settlesWithin(waiting, 2000), "close ends the wait");
});

Deno.test("backoff: a flush's wake ends a wait without Retry-After", async () => {
  const b = new Backoff(10_000, 30_000);
  const waiting = b.wait(0);
  b.wake(false);
  assert(await settlesWithin(waiting, 2000), "flush ends the wait");
});
