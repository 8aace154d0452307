// The one place lib/ names npm package `@nats-io/transport-node`: lib files import it from here, so a script
// outside this repository (without its import map) resolves it too. Keep the version equal to
// deno.json "imports" (tests/deps_test.ts checks).
export {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  NatsConnectionImpl,
  type NodeConnectionOptions,
  setTransportFactory,
} from "npm:@nats-io/transport-node@^3.4.0";
export {
  nodeResolveHost,
  NodeTransport,
} from "npm:@nats-io/transport-node@^3.4.0/lib/node_transport.js";
