// Offline after the first visit (JavaScript only because service workers are JavaScript only).
// Loaded by loader.js over http(s). Registers sw.js (written by the build, see
// tools/sw.template.js) once the page is ready, shows #offline-ready when this browser
// holds every file of the build, and shows #update-ready when a newer build has been
// stored and waits: clicking it switches to the new build and reloads the page.
const status = document.getElementById("status");
const offline = document.getElementById("offline-ready");
const update = document.getElementById("update-ready");
const sw = navigator.serviceWorker;

function ask(worker, message) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data);
    worker.postMessage(message, [channel.port2]);
  });
}

async function showOffline() {
  const registration = await sw.ready; // resolves once a build is fully cached and active
  const { version, files, cached } = await ask(registration.active, { type: "status" });
  if (cached !== files) return; // the browser dropped part of the cache: not offline-ready
  offline.dataset.version = version;
  offline.title = `Stored in this browser (build ${version}, ${files} files): the page also opens without a network.`;
  offline.hidden = false;
}

function offerUpdate(registration) {
  if (!registration.waiting || !sw.controller || !update.hidden) return;
  update.hidden = false;
  update.addEventListener("click", () => {
    update.disabled = true;
    sw.addEventListener("controllerchange", () => location.reload());
    registration.waiting.postMessage({ type: "skip-waiting" });
  }, { once: true });
}

function watchForUpdates(registration) {
  const track = (worker) => worker && worker.addEventListener("statechange", () => offerUpdate(registration));
  track(registration.installing);
  registration.addEventListener("updatefound", () => track(registration.installing));
  offerUpdate(registration);
}

async function start() {
  // A page served by an older build still learns about a newer one, even if it fails to start.
  const existing = await sw.getRegistration();
  if (existing) watchForUpdates(existing);
  await new Promise((resolve) => {
    const check = () => status.dataset.state === "ready" && resolve();
    new MutationObserver(check).observe(status, { attributes: true, attributeFilter: ["data-state"] });
    check();
  });
  const registration = await sw.register("./sw.js");
  if (existing) {
    registration.update().catch(() => {}); // offline: nothing to compare with, keep this build
  } else {
    watchForUpdates(registration);
  }
  await showOffline();
}

start().catch((error) => console.warn(`nn-visualizer: offline copy not available: ${error.message || error}`));
