// MemoryBudget (lib/memory_budget.ts): reservations within the capacity, waiters
// granted strictly in the order they asked, bounded waiting, aborts, and requests over the
// whole capacity granted alone.
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { BudgetWaitersFullError, MemoryBudget } from "../lib/internal.ts";

/** Lets resolved promises' continuations run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("MemoryBudget: reserve within the capacity at once, then wait; release grants in order", async () => {
  const b = new MemoryBudget({ capacity: 100 });
  assert(b.tryReserve(60));
  assert(!b.tryReserve(50), "50 more do not fit in 100 with 60 held");
  assertEquals(b.held, 60);
  const order: string[] = [];
  const big = b.reserve(50).then(() => order.push("big"));
  // Fits on its own, but a larger one asked first: it waits its turn (no overtaking).
  const small = b.reserve(10).then(() => order.push("small"));
  assert(!b.tryReserve(1), "tryReserve does not overtake waiters");
  assertEquals([b.waiting, b.waitingBytes, b.waits, b.full], [2, 60, 2, true]);
  await settle();
  assertEquals(order, []);
  b.release(60);
  await Promise.all([big, small]);
  assertEquals(order, ["big", "small"]);
  assertEquals([b.held, b.waiting, b.full], [60, 0, false]);
  b.release(60);
  assertEquals(b.held, 0);
});

Deno.test("MemoryBudget: a release grants every waiter that fits, stopping at the first that does not", async () => {
  const b = new MemoryBudget({ capacity: 100 });
  b.charge(100);
  const got: number[] = [];
  const ps = [30, 30, 50, 10].map((n) => b.reserve(n).then(() => got.push(n)));
  b.release(70);
  await settle();
  assertEquals(got, [30, 30]); // 50 does not fit next to 90; 10 waits behind it
  b.release(50); // 40 held: 50 and then 10 fit (100)
  await settle();
  assertEquals(got, [30, 30, 50, 10]);
  await Promise.all(ps);
  assertEquals(b.held, 100);
});

Deno.test("MemoryBudget: waiting is bounded: one more than maxWaiters is refused, nothing reserved", async () => {
  const b = new MemoryBudget({ capacity: 10, maxWaiters: 2, name: "--max-buffered-bytes" });
  b.charge(10);
  const a = b.reserve(5), c = b.reserve(5);
  const e = await assertRejects(() => b.reserve(5), BudgetWaitersFullError);
  assert(e.message.includes("--max-buffered-bytes"), e.message);
  assertEquals([b.waiting, b.held], [2, 10]);
  b.release(10);
  await Promise.all([a, c]);
  assertEquals(b.held, 10);
});

Deno.test("MemoryBudget: an aborted wait reserves nothing and lets the ones behind it through", async () => {
  const b = new MemoryBudget({ capacity: 100 });
  b.charge(50);
  const ac = new AbortController();
  const big = b.reserve(80, ac.signal);
  const small = b.reserve(40);
  let smallDone = false;
  small.then(() => smallDone = true);
  await settle();
  assert(!smallDone, "behind the big one");
  ac.abort(new Error("connection closed"));
  assertEquals((await assertRejects(() => big, Error)).message, "connection closed");
  await small;
  assertEquals([b.held, b.waiting], [90, 0]);
  // Already aborted: rejected at once, never queued.
  assertEquals(
    (await assertRejects(() => b.reserve(100, ac.signal), Error)).message,
    "connection closed",
  );
  assertEquals(b.waits, 2);
});

Deno.test("MemoryBudget: a request over the capacity is granted alone, once nothing is held", async () => {
  const b = new MemoryBudget({ capacity: 100 });
  assert(b.tryReserve(150), "alone: granted");
  b.release(150);
  b.charge(1);
  let done = false;
  const p = b.reserve(150).then(() => done = true);
  await settle();
  assert(!done);
  b.release(1);
  await p;
  assertEquals(b.held, 150);
});

Deno.test("MemoryBudget: whenAvailable waits in order without reserving; charge may overshoot", async () => {
  const b = new MemoryBudget({ capacity: 100 });
  b.charge(120);
  assert(b.full);
  const order: string[] = [];
  const r = b.reserve(30).then(() => order.push("reserve"));
  const w = b.whenAvailable(30).then(() => order.push("room"));
  b.release(60); // 60 held: the reservation fits (90), then room for 30 more does not (120)
  await settle();
  assertEquals(order, ["reserve"]);
  b.release(30);
  await Promise.all([r, w]);
  assertEquals(order, ["reserve", "room"]);
  assertEquals(b.held, 60);
});

Deno.test("MemoryBudget: bad counts and releasing more than held are errors", () => {
  const b = new MemoryBudget({ capacity: 10 });
  assert(assertThrows(() => b.release(1), RangeError).message.includes("released twice"));
  assertThrows(() => b.tryReserve(-1), RangeError);
  assertThrows(() => b.charge(NaN), RangeError);
  assertThrows(() => new MemoryBudget({ capacity: 0 }), RangeError);
});
