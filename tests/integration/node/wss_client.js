// A wss client on node's own WebSocket (undici; `--experimental-websocket` on node 20), trusting
// the test CA through NODE_EXTRA_CA_CERTS: subscribes to a topic, prints "ready" once acknowledged,
// collects `count` data messages, sends {"op":"ping"} and, on the pong, writes a JSON object
// {messages, pong} to stdout. Exits 1 with a message on an error or an early close.
//   node --experimental-websocket wss_client.js wss://127.0.0.1:PORT/ws TOPIC COUNT
"use strict";
const [url, topic, countArg] = process.argv.slice(2);
const want = Number(countArg);
const result = { messages: [], pong: false };
const ws = new WebSocket(url);
ws.onopen = () => ws.send(JSON.stringify({ op: "subscribe", args: [topic] }));
ws.onmessage = (e) => {
  const d = e.data.startsWith('{"event"') ? JSON.parse(e.data) : {};
  if (d.event === "subscribe") {
    process.stdout.write("ready\n");
    return;
  }
  if (d.event === "pong") {
    result.pong = true;
    process.stdout.write(JSON.stringify(result) + "\n");
    ws.close();
    return;
  }
  if (d.event) return;
  result.messages.push(e.data);
  if (result.messages.length === want) ws.send(JSON.stringify({ op: "ping" }));
};
ws.onerror = (e) => {
  console.error(`error: ${e.message ?? e.error ?? e}`);
  process.exit(1);
};
ws.onclose = (e) => {
  if (!result.pong) {
    console.error(`closed early: code ${e.code}, ${result.messages.length} of ${want} messages`);
    process.exit(1);
  }
};
