// The search page: one form, a grid of hits, each explained by the tokens that matched it.
// Everything is built with DOM calls (no innerHTML), so text from the index is never read as markup.
"use strict";

const state = { q: "", mode: "expanded", k: 24, page: 0, similar: null, image: null, queryTokens: new Set() };
const FILTERS = { folder: "f-folder", taken_after: "f-after", taken_before: "f-before", camera: "f-camera" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function humanSize(bytes) {
  if (bytes == null) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function setStatus(text, isError = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function renderExpansion(expansion) {
  const box = document.getElementById("expansion");
  box.replaceChildren();
  state.queryTokens = new Set((expansion || []).map(([token]) => token));
  const own = new Set(state.q.toLowerCase().split(/\W+/));
  for (const [token, weight] of expansion || []) {
    box.append(el("span", { class: own.has(token) ? "qtoken own" : "qtoken", title: `weight ${weight}` },
      `${token} ${weight.toFixed(2)}`));
  }
}

function renderHit(hit) {
  const img = el("img", { alt: hit.path || hit.id, loading: "lazy" });
  img.src = hit.thumb || "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";
  const link = hit.image ? el("a", { href: hit.image, target: "_blank", rel: "noopener" }, img) : img;
  const tokens = el("ul", { class: "tokens" });
  const top = hit.tokens.length ? hit.tokens[0][1] : 1;
  for (const [token, contribution] of hit.tokens) {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${Math.max(4, (100 * contribution) / top)}%`;
    const name = el("span", { class: "name" });
    name.append(state.queryTokens.has(token) ? el("mark", {}, token) : token);
    tokens.append(el("li", { class: "token", "data-token": token }, bar, name,
      el("span", { class: "value" }, contribution.toFixed(3))));
  }
  const more = el("button", { class: "more", type: "button" }, "more like this");
  more.addEventListener("click", () => { state.similar = hit.id; state.image = null; state.page = 0; run(); });
  const card = el("article", { class: "hit", "data-id": hit.id },
    link,
    el("div", { class: "meta" }, el("span", { class: "score" }, `#${hit.rank}  ${hit.score.toFixed(3)}`),
      el("span", {}, [hit.width && hit.height ? `${hit.width}×${hit.height}` : "", humanSize(hit.file_size)]
        .filter(Boolean).join(" · "))),
    el("div", { class: "path" }, hit.path || hit.id));
  if (hit.caption) card.insertBefore(el("div", { class: "caption" }, hit.caption), card.children[1]);
  if (hit.duplicates && hit.duplicates.length) {
    card.append(el("div", { class: "dups", title: hit.duplicates.join("\n") },
      `+${hit.duplicates.length} near-duplicate${hit.duplicates.length > 1 ? "s" : ""}`));
  }
  card.append(tokens, more);
  return card;
}

async function run() {
  const params = new URLSearchParams({ k: state.k, page: state.page });
  for (const [name, id] of Object.entries(FILTERS)) {
    const value = document.getElementById(id).value.trim();
    if (value) params.set(name, value);
  }
  let url;
  const options = { credentials: "same-origin" };
  if (state.image) {
    url = `/v1/search-image?${params}`;
    Object.assign(options, { method: "POST", body: state.image, headers: { "Content-Type": "application/octet-stream" } });
  } else if (state.similar) { params.set("id", state.similar); url = `/v1/similar?${params}`; }
  else { params.set("q", state.q); params.set("mode", state.mode); url = `/v1/search?${params}`; }
  if (!state.image) history.replaceState(null, "", `#${params}`);
  setStatus("searching…");
  let reply;
  try {
    const response = await fetch(url, options);
    reply = await response.json();
    if (!response.ok) { setStatus(reply.error || `error ${response.status}`, true); return; }
  } catch (err) { setStatus(`the service did not answer: ${err}`, true); return; }
  if (!state.similar) renderExpansion(reply.expansion);
  const grid = document.getElementById("grid");
  grid.replaceChildren(...reply.hits.map(renderHit));
  const what = state.image ? `the image ${state.image.name || ""}` : state.similar ? `more like ${state.similar}`
    : `“${state.q}” (${state.mode})`;
  const none = reply.below_floor ? `no good match (${reply.below_floor} weaker hits under the score floor)` : "no results";
  setStatus(`${reply.hits.length ? `results ${reply.hits[0].rank}–${reply.hits.at(-1).rank}` : none}`
    + ` for ${what} in ${reply.took_ms} ms`);
  document.getElementById("prev").disabled = state.page === 0;
  document.getElementById("next").disabled = !reply.has_more;
  document.getElementById("page-label").textContent = `page ${state.page + 1}`;
}

async function init() {
  const info = await (await fetch("/v1/info", { credentials: "same-origin" })).json();
  const modes = document.getElementById("mode");
  for (const mode of info.modes || ["expanded"]) modes.append(el("option", { value: mode }, mode));
  const form = document.getElementById("search-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    state.mode = modes.value;
    state.k = Number(document.getElementById("k").value);
    state.page = 0;
    state.similar = null;
    state.image = null;
    if (state.q) run(); else setStatus("type some words to search for", true);
  });
  const byImage = (file) => {
    if (!file) return;
    if (info.max_upload_bytes && file.size > info.max_upload_bytes) {
      setStatus(`that image is ${humanSize(file.size)}; the limit is ${humanSize(info.max_upload_bytes)}`, true);
      return;
    }
    state.image = file; state.similar = null; state.page = 0; run();
  };
  document.getElementById("image-file").addEventListener("change", (event) => byImage(event.target.files[0]));
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault(); drop.classList.remove("over"); byImage(event.dataTransfer.files[0]);
  });
  for (const id of Object.values(FILTERS)) {
    document.getElementById(id).addEventListener("change", () => { if (state.q || state.image || state.similar) { state.page = 0; run(); } });
  }
  document.getElementById("prev").addEventListener("click", () => { state.page -= 1; run(); });
  document.getElementById("next").addEventListener("click", () => { state.page += 1; run(); });
  setStatus(`${info.documents} documents · ${info.encoder || ""}`);
}

document.addEventListener("DOMContentLoaded", init);
