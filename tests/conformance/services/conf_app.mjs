// TypeScript SDK (@restatedev/restate-sdk 1.17.2, Node 22) services of the conformance suite.
//
// The same services as conf_app.py, named with the suffix "Ts" (CounterTs, WfTs, ...), so both
// deployments can be registered on one server. Handler names and behaviour match the Python app
// (see its docstring). TS serializes JSON without spaces; tests compare parsed values.
//
// Listens on 127.0.0.1:$SERVICE_PORT (0 = any free port) over HTTP/2 cleartext and prints
// "service listening on 127.0.0.1:PORT" once it accepts connections.
import * as restate from "@restatedev/restate-sdk";
import * as http2 from "node:http2";

const FAST_RETRIES = { initialInterval: { milliseconds: 100 }, exponentiationFactor: 1 };
const SHORT_RETENTION = { seconds: 2 };

const attemptsByTag = new Map();
const healed = new Set();

function nextAttempt(tag) {
  const n = (attemptsByTag.get(tag) ?? 0) + 1;
  attemptsByTag.set(tag, n);
  return n;
}

// -- objects -----------------------------------------------------------------------------------

function makeCounter(name, lazy) {
  const shared = restate.handlers.object.shared;
  return restate.object({
    name,
    handlers: {
      add: async (ctx, delta) => {
        const count = ((await ctx.get("count")) ?? 0) + delta;
        ctx.set("count", count);
        return count;
      },
      get: shared(async (ctx) => (await ctx.get("count")) ?? 0),
      put: async (ctx, req) => {
        ctx.set(req.key, req.value);
      },
      read: shared(async (ctx, key) => (await ctx.get(key)) ?? null),
      keys: async (ctx) => (await ctx.stateKeys()).sort(),
      clear: async (ctx, key) => {
        ctx.clear(key);
      },
      clear_all: async (ctx) => {
        ctx.clearAll();
      },
      hold: async (ctx, req) => {
        await ctx.sleep({ milliseconds: req.ms });
        const entries = (await ctx.get("log")) ?? [];
        entries.push(String(req.tag));
        ctx.set("log", entries);
        return entries;
      },
      append: async (ctx, tag) => {
        const entries = (await ctx.get("log")) ?? [];
        entries.push(tag);
        ctx.set("log", entries);
        return entries;
      },
      log: shared(async (ctx) => (await ctx.get("log")) ?? []),
    },
    options: lazy ? { enableLazyState: true } : undefined,
  });
}

const counter = makeCounter("CounterTs", false);
const lazyCounter = makeCounter("LazyCounterTs", true);

const mailbox = restate.object({
  name: "MailboxTs",
  handlers: {
    put: async (ctx, id) => {
      ctx.set("id", id);
    },
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get("id")) ?? null),
  },
});

// -- workflows ---------------------------------------------------------------------------------

const wf = restate.workflow({
  name: "WfTs",
  handlers: {
    run: async (ctx, req) => {
      ctx.set("status", "waiting");
      const approval = await ctx.promise("approval");
      ctx.set("status", "done");
      return { input: req, approved_with: approval };
    },
    signal: async (ctx, value) => {
      await ctx.promise("approval").resolve(value);
      return "resolved";
    },
    reject: async (ctx, message) => {
      await ctx.promise("approval").reject(message);
      return "rejected";
    },
    status: async (ctx) => (await ctx.get("status")) ?? null,
    peek: async (ctx) => (await ctx.promise("approval").peek()) ?? null,
  },
});

const shortWf = restate.workflow({
  name: "ShortWfTs",
  handlers: {
    run: async (_ctx, req) => ({ done: req }),
  },
  options: { workflowRetention: SHORT_RETENTION },
});

// -- plain services ----------------------------------------------------------------------------

const sleeper = restate.service({
  name: "SleeperTs",
  handlers: {
    sleep: async (ctx, ms) => {
      await ctx.sleep({ milliseconds: ms });
      return ms;
    },
  },
});

const echo = restate.service({
  name: "EchoTs",
  handlers: {
    headers: async (ctx) => {
      const out = {};
      for (const [k, v] of ctx.request().headers) {
        if (k.toLowerCase().startsWith("x-test-")) out[k] = v;
      }
      return out;
    },
    raw: restate.handlers.handler(
      { input: restate.serde.binary, output: restate.serde.binary },
      async (_ctx, data) => Uint8Array.from(data).reverse(),
    ),
    nothing: async () => undefined,
    hello: async () => "hello",
  },
});

// GetInvocationOutputCommand: the SDK has no public API for it (only attach); its core VM does.
// This goes through the same internal entry point as the SDK's own `attach` (context_impl.js).
const GET_INVOCATION_OUTPUT = 16; // WasmCommandType.GetInvocationOutput
function getInvocationOutput(ctx, invocationId) {
  return ctx.processCompletableEntry(
    GET_INVOCATION_OUTPUT,
    () => {},
    (vm) => vm.sys_get_invocation_output(invocationId),
    async (value, prom) => {
      if (value !== "Empty") return false;
      prom.resolve({ ready: false });
      return true;
    },
    async (value, prom) => {
      if (typeof value !== "object" || !("Success" in value)) return false;
      prom.resolve({ ready: true, value: JSON.parse(new TextDecoder().decode(value.Success)) });
      return true;
    },
    async (value, prom) => {
      if (typeof value !== "object" || !("Failure" in value)) return false;
      prom.resolve({ ready: true, failure: { code: value.Failure.code, message: value.Failure.message } });
      return true;
    },
  );
}

const caller = restate.service({
  name: "CallerTs",
  handlers: {
    call_add: async (ctx, req) =>
      ctx.genericCall({
        service: "CounterTs",
        method: "add",
        key: req.key,
        parameter: req.delta,
        inputSerde: restate.serde.json,
        outputSerde: restate.serde.json,
        idempotencyKey: req.idem ?? undefined,
      }),
    send_add: async (ctx, req) => {
      const handle = ctx.genericSend({
        service: "CounterTs",
        method: "add",
        key: req.key,
        parameter: req.delta,
        inputSerde: restate.serde.json,
        delay: req.delay_ms ? { milliseconds: req.delay_ms } : undefined,
      });
      return await handle.invocationId;
    },
    call_wf: async (ctx, req) =>
      ctx.genericCall({
        service: "WfTs",
        method: "run",
        key: req.key,
        parameter: req.input,
        inputSerde: restate.serde.json,
        outputSerde: restate.serde.json,
      }),
    call_headers: async (ctx, hdrs) =>
      ctx.genericCall({
        service: "EchoTs",
        method: "headers",
        parameter: new Uint8Array(0),
        outputSerde: restate.serde.json,
        headers: hdrs,
      }),
    call_sleep: async (ctx, ms) =>
      ctx.genericCall({
        service: "SleeperTs",
        method: "sleep",
        parameter: ms,
        inputSerde: restate.serde.json,
        outputSerde: restate.serde.json,
      }),
    call_terminal: async (ctx, req) =>
      ctx.genericCall({
        service: "FailingTs",
        method: "terminal",
        parameter: req,
        inputSerde: restate.serde.json,
        outputSerde: restate.serde.json,
      }),
    attach: async (ctx, invocationId) =>
      ctx.invocation(restate.InvocationIdParser.fromString(invocationId)).attach(),
    output: async (ctx, invocationId) => getInvocationOutput(ctx, invocationId),
  },
});

// -- awakeables --------------------------------------------------------------------------------

const awaker = restate.service({
  name: "AwakerTs",
  handlers: {
    wait: async (ctx, tag) => {
      const { id, promise } = ctx.awakeable();
      ctx.objectSendClient({ name: "MailboxTs" }, tag).put(id);
      const value = await promise;
      return { id, value };
    },
    resolve: async (ctx, req) => {
      ctx.resolveAwakeable(req.id, req.value);
    },
    reject: async (ctx, req) => {
      ctx.rejectAwakeable(req.id, req.message);
    },
    wait_signal: async (ctx, name) => ctx.signal(name),
    send_signal: async (ctx, req) => {
      const signal = ctx.invocation(restate.InvocationIdParser.fromString(req.id)).signal(req.name);
      if ("message" in req) {
        signal.reject(new restate.TerminalError(req.message, { errorCode: req.code ?? 500 }));
      } else {
        signal.resolve(req.value);
      }
    },
  },
});

// -- failures ----------------------------------------------------------------------------------

const handler = restate.handlers.handler;

const failing = restate.service({
  name: "FailingTs",
  handlers: {
    terminal: async (_ctx, req) => {
      throw new restate.TerminalError(req.message, { errorCode: req.code });
    },
    flaky: handler({ retryPolicy: FAST_RETRIES }, async (_ctx, tag) => {
      const attempt = nextAttempt(tag);
      if (attempt <= 2) throw new Error(`[SIMULATED] flaky ${tag} attempt ${attempt}`);
      return attempt;
    }),
    exhaust_pause: handler(
      {
        retryPolicy: {
          initialInterval: { milliseconds: 100 },
          maxAttempts: 2,
          onMaxAttempts: "pause",
        },
      },
      async (_ctx, tag) => {
        const attempt = nextAttempt(tag);
        if (!healed.has(tag)) throw new Error(`[SIMULATED] ${tag} attempt ${attempt}`);
        return attempt;
      },
    ),
    exhaust_kill: handler(
      {
        retryPolicy: {
          initialInterval: { milliseconds: 100 },
          maxAttempts: 2,
          onMaxAttempts: "kill",
        },
      },
      async (_ctx, tag) => {
        const attempt = nextAttempt(tag);
        throw new Error(`[SIMULATED] ${tag} attempt ${attempt}`);
      },
    ),
    heal: async (_ctx, tag) => {
      healed.add(tag);
    },
    attempts: async (_ctx, tag) => attemptsByTag.get(tag) ?? 0,
  },
});

const retention = restate.service({
  name: "RetentionTs",
  handlers: {
    short: handler({ idempotencyRetention: SHORT_RETENTION }, async () => "done"),
  },
});

const server = http2.createServer(
  restate.createEndpointHandler({
    services: [
      counter,
      lazyCounter,
      mailbox,
      wf,
      shortWf,
      sleeper,
      echo,
      caller,
      awaker,
      failing,
      retention,
    ],
  }),
);
const port = Number(process.env.SERVICE_PORT || 0);
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`service listening on 127.0.0.1:${server.address().port}\n`);
});

function shutdown() {
  server.close();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
