// The offline copy of the site: a service worker (the one thing only JavaScript can do here).
// site/sw.js is written from tools/sw.template.js by tools/precache.py at every build; edit the template.
//
// One build, one cache ("nn-visualizer-<version>") holding every file of that build, each checked
// against the sha256 the build recorded (fetch integrity), so a cache never holds files of two builds.
// - install: fill this build's cache. A file that an older build's cache already holds with the same
//   sha256 is copied from there; the others from the HTTP cache (what the page just loaded), else
//   the network. If any file fails, the install
//   fails and the browser tries again on a later visit; the old build keeps working meanwhile.
// - activate: delete the caches of all other builds.
// - fetch: a file of this build comes from its cache (from the network if the cache lost it);
//   every other request goes to the network untouched.
// - On-demand files (BUILD.on_demand: the training digits, which only Train mode needs, and the
//   models other than the default, fetched when picked) are not
//   downloaded at install, so a first visit transfers no more than the page needs. The first
//   time the page fetches one, it streams to the page, and a copy (once checked against the
//   build's sha256) is stored in this build's cache and served from there afterwards, offline too.
//   (Fetched before this worker controlled the page, they are stored at their next fetch.) Install copies them from
//   an older build's cache when that holds the same bytes.
// - No skipWaiting on install: a new build waits until no page of the old one is open, or until
//   the page asks for it (message "skip-waiting", sent when the user clicks "reload" in the
//   page), and the page then reloads. No page ever runs on files of two builds.
"use strict";

const BUILD = {{BUILD}};
const PREFIX = "nn-visualizer-";
const CACHE = PREFIX + BUILD.version;
const FILES = new Map(BUILD.files.map(([path, sri]) => [new URL(path, self.registration.scope).href, sri]));
const ON_DEMAND = new Map((BUILD.on_demand || []).map(([path, sri]) => [new URL(path, self.registration.scope).href, sri]));

async function sha256(response) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await response.arrayBuffer()));
  return "sha256-" + btoa(String.fromCharCode(...digest));
}

async function fromOlderBuild(url, sri) {
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const response = await (await caches.open(name)).match(url);
    if (response && (await sha256(response.clone())) === sri) return response;
  }
  return null;
}

// The page itself: a page loaded as its folder's address ("./") is in the HTTP cache under that
// address, not as index.html, so the worker asks for it by that address then (no second download).
const INDEX = new URL("index.html", self.registration.scope).href;

async function loadedAsFolder() {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return pages.some((page) => {
    const address = new URL(page.url);
    return address.origin + address.pathname === self.registration.scope;
  });
}

// Exactly this build's bytes (integrity). The page has just downloaded most files: take them from
// the HTTP cache ("force-cache": no second download, no request at all). A cached copy that is not
// this build's (integrity fails) or not a success is fetched again, revalidated ("no-cache").
async function download(url, sri) {
  if (url === INDEX && (await loadedAsFolder())) url = self.registration.scope;
  try {
    const response = await fetch(url, { cache: "force-cache", integrity: sri });
    if (response.ok) return response;
  } catch {
    // not this build's bytes in the HTTP cache: fetch again below
  }
  const response = await fetch(url, { cache: "no-cache", integrity: sri });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

async function fill() {
  const cache = await caches.open(CACHE);
  await Promise.all([...FILES].map(async ([url, sri]) => {
    if (await cache.match(url)) return; // checked and stored by an interrupted install of this same build
    const response = (await fromOlderBuild(url, sri)) || (await download(url, sri));
    await cache.put(url, response);
  }));
  // On-demand files: kept across an update when unchanged, never downloaded here.
  await Promise.all([...ON_DEMAND].map(async ([url, sri]) => {
    if (await cache.match(url)) return;
    const response = await fromOlderBuild(url, sri);
    if (response) await cache.put(url, response);
  }));
}

// The first fetch of an on-demand file streams from the network to the page as it arrives (the
// page shows the download's progress); a copy is stored once its bytes prove to be this build's.
async function storeIfIntact(url, sri, response) {
  const body = await response.arrayBuffer();
  if ((await sha256(new Response(body))) !== sri) return;
  const headers = { "Content-Type": response.headers.get("Content-Type") || "application/octet-stream" };
  await (await caches.open(CACHE)).put(url, new Response(body, { headers }));
}

async function fetchOnDemand(event, url, sri) {
  const cached = await (await caches.open(CACHE)).match(url);
  if (cached) return cached;
  const response = await fetch(event.request.url, { cache: "no-cache" });
  if (response.ok) event.waitUntil(storeIfIntact(url, sri, response.clone()));
  return response;
}

self.addEventListener("install", (event) => event.waitUntil(fill()));

// clients.claim(): the page of a first visit (loaded before any worker) is served by this one from
// now on, so that fetching the on-demand files during that visit already stores them. Its files
// are this build's (the install checked them), and an update only activates when no page of the
// old build is open or when the page asked for it and reloads.
self.addEventListener("activate", (event) => event.waitUntil((async () => {
  const old = (await caches.keys()).filter((name) => name.startsWith(PREFIX) && name !== CACHE);
  await Promise.all(old.map((name) => caches.delete(name)));
  await self.clients.claim();
})()));

function fileOf(request) {
  const url = new URL(request.url);
  url.hash = "";
  if (request.mode === "navigate") {
    url.search = "";
    if (url.pathname.endsWith("/")) url.pathname += "index.html";
  }
  return url.href;
}

self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  const url = fileOf(event.request);
  if (ON_DEMAND.has(url)) {
    event.respondWith(fetchOnDemand(event, url, ON_DEMAND.get(url)));
    return;
  }
  if (!FILES.has(url)) return;
  event.respondWith((async () => {
    const cached = await (await caches.open(CACHE)).match(url);
    return cached || fetch(event.request);
  })());
});

async function status() {
  const stored = new Set();
  if (await caches.has(CACHE)) {
    for (const request of await (await caches.open(CACHE)).keys()) stored.add(request.url);
  }
  const cached = [...FILES.keys()].filter((url) => stored.has(url)).length;
  return { version: BUILD.version, files: FILES.size, cached };
}

self.addEventListener("message", (event) => {
  const type = event.data && event.data.type;
  if (type === "skip-waiting") {
    self.skipWaiting();
  } else if (type === "status" && event.ports[0]) {
    event.waitUntil(status().then((answer) => event.ports[0].postMessage(answer)));
  }
});
