// A worker of site/loader.js: reads a file of the page again and compares it with this build's
// sha256. From a worker, the read never meets the page's preloads (a page's fetch would take
// over, or warn about, a preload meant for the runtime); "force-cache" takes the bytes from the
// HTTP cache (or the service worker) the runtime has just filled, not from the network.
"use strict";

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "sha256-" + btoa(String.fromCharCode(...digest));
}

// What is wrong with the file ({kind, detail}), or null when it is this build's.
async function problem(url, sri, size) {
  let response;
  try {
    response = await fetch(url, { cache: "force-cache" });
  } catch (error) {
    return { kind: "unreadable", detail: error.message };
  }
  if (!response.ok) return { kind: "missing", detail: `HTTP ${response.status}` };
  const bytes = await response.arrayBuffer();
  if (await sha256(bytes) === sri) return null;
  const got = bytes.byteLength;
  const how = got < size ? `truncated: ${got} of ${size} bytes` : got > size ? `${got} bytes instead of ${size}` : "corrupted: same size, other bytes";
  return { kind: "damaged", detail: `${how}; integrity check failed, its sha256 is not this build's` };
}

self.onmessage = async ({ data: { url, sri, size } }) => {
  self.postMessage({ url, problem: await problem(url, sri, size) });
};
