// Reconstructs a "delta":"fossil" subscription's messages with the npm `fossil-delta` package: an
// independent decoder, the one centrifuge-js builds on. Reads a JSON array of the text frames a client
// received (stdin); writes a JSON array of {topic, key, seq, delta, payload} (stdout). Exits 1 with a
// message when a delta does not apply (a missing base, a bad checksum).
"use strict";
const fossilDelta = require("fossil-delta");

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const previous = new Map();  // topic + "\0" + key -> the last payload's bytes
const out = [];
for (const text of input) {
  const m = JSON.parse(text);
  if (m.event !== undefined) continue;  // acks, drop notices
  const id = m.topic + "\u0000" + (m.key ?? "");
  let bytes;
  if (m.delta) {
    const base = previous.get(id);
    if (!base) {
      console.error(`seq ${m.seq}: a delta without a base for ${id}`);
      process.exit(1);
    }
    try {
      bytes = Uint8Array.from(fossilDelta.apply(base, encoder.encode(m.data)));
    } catch (e) {
      console.error(`seq ${m.seq}: ${e.message}`);
      process.exit(1);
    }
  } else {
    bytes = encoder.encode(m.data);
  }
  previous.set(id, bytes);
  out.push({ topic: m.topic, key: m.key ?? "", seq: m.seq, delta: !!m.delta, payload: decoder.decode(bytes) });
}
process.stdout.write(JSON.stringify(out));
