// Test helper (a Worker): one peer that writes a frame buffer to the sidecar over and over as
// fast as the socket takes it, in its own thread so the test's event loop (the slow peers, the
// reads of the output) is not held up by it. In: {port, bytes} to start, "stop" to stop (after
// the write in progress). Out: {bytes, done: false} after the first round, {bytes, done: true,
// error?} once stopped and closed.
type Start = { port: number; bytes: Uint8Array };
/** This worker's scope (the test type-checks with the window lib). */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<Start | "stop">) => void;
  postMessage(message: { bytes: number; done: boolean; error?: string }): void;
};
let stop = false;

scope.onmessage = async (e) => {
  if (e.data === "stop") {
    stop = true;
    return;
  }
  const { port, bytes } = e.data;
  let sent = 0, error: string | undefined;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // Bounded: at most 64 GiB even if "stop" never came.
    for (let r = 0; !stop && r < 65536; r++) {
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      sent += bytes.length;
      if (r === 0) scope.postMessage({ bytes: sent, done: false });
    }
  } catch (err) {
    error = String(err);
  } finally {
    conn.close();
  }
  scope.postMessage({ bytes: sent, done: true, error });
};
