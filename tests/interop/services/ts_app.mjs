// TypeScript SDK (@restatedev/restate-sdk 1.17.2, Node 22) services for the interop tests.
//
// Greeter.greet is the conference demo, the same logic as py_app.py: rand.uuidv4(),
// run "Notification", sleep 1 s, run "Reminder" (fails for "Alice" on its first 3 executions
// per greeting id). Long.go: step1, sleep, step2, sleep, step3.
// Each side-effect execution appends a JSON line to $EFFECTS_LOG. Listens on 127.0.0.1:$SERVICE_PORT
// (0 = any free port) over HTTP/2 cleartext and prints "service listening on 127.0.0.1:PORT".
import * as restate from "@restatedev/restate-sdk";
import * as fs from "node:fs";
import * as http2 from "node:http2";

const EFFECTS_LOG = process.env.EFFECTS_LOG;
const ALICE_FAILURES = 3;
const executions = new Map();

function nextAttempt(step, key) {
  const k = `${step}\u0000${key}`;
  const count = (executions.get(k) ?? 0) + 1;
  executions.set(k, count);
  return count;
}

function logEffect(step, key, name, attempt, ok) {
  if (!EFFECTS_LOG) return;
  const line = JSON.stringify({
    step,
    id: key,
    name,
    attempt,
    ok,
    ts: Date.now() / 1000,
    sdk: "typescript",
  });
  fs.appendFileSync(EFFECTS_LOG, line + "\n");
}

function sendNotification(greetingId, name) {
  logEffect("Notification", greetingId, name, nextAttempt("Notification", greetingId), true);
}

function sendReminder(greetingId, name) {
  const attempt = nextAttempt("Reminder", greetingId);
  const fail = name === "Alice" && attempt <= ALICE_FAILURES;
  logEffect("Reminder", greetingId, name, attempt, !fail);
  if (fail) {
    throw new Error(`[SIMULATED] reminder for ${name} failed (attempt ${attempt})`);
  }
}

const greeter = restate.service({
  name: "Greeter",
  handlers: {
    greet: async (ctx, req) => {
      const name = req.name;
      const greetingId = ctx.rand.uuidv4();
      await ctx.run("Notification", () => sendNotification(greetingId, name));
      await ctx.sleep({ seconds: 1 });
      await ctx.run("Reminder", () => sendReminder(greetingId, name));
      return { result: `You said hi to ${name}!` };
    },
  },
});

function doStep(step, tag) {
  logEffect(step, tag, "", nextAttempt(step, tag), true);
  return `${step}@${(Date.now() / 1000).toFixed(3)}`;
}

const long = restate.service({
  name: "Long",
  handlers: {
    go: async (ctx, req) => {
      const tag = String(req.tag);
      const pause = { milliseconds: Math.round(1000 * (req.sleep_seconds ?? 5)) };
      const result = {};
      result.step1 = await ctx.run("step1", () => doStep("step1", tag));
      await ctx.sleep(pause);
      result.step2 = await ctx.run("step2", () => doStep("step2", tag));
      await ctx.sleep(pause);
      result.step3 = await ctx.run("step3", () => doStep("step3", tag));
      return result;
    },
  },
});

const server = http2.createServer(restate.createEndpointHandler({ services: [greeter, long] }));
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
