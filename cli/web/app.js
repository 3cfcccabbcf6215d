// The page at /: the store at a glance and a box to classify pasted text. Plain DOM, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const fmtInt = (n) => Number(n).toLocaleString("en-US");
const fmtNum = (x, d = 3) => (x >= 0 ? "+" : "") + Number(x).toFixed(d);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = body.message || (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return body;
}

async function loadStore() {
  try {
    const [info, categories] = await Promise.all([getJSON("/info"), getJSON("/categories")]);
    $("#summary").textContent =
      `${fmtInt(info.documents)} pages in ${fmtInt(info.categories)} categories · ` +
      `${fmtInt(info.tokens)} tokens · ${fmtInt(info.distinct_features)} features · ` +
      `snapshot ${info.served_snapshot || "none"} · model ${info.model} · ready in ${info.ready_seconds} s`;
    const body = $("#categories tbody");
    body.replaceChildren();
    if (info.generation) {
      const select = $("#gen-category");
      for (const c of categories) select.add(new Option(c.name, c.name));
      $("#gen-length").max = String(info.limits.max_generate_tokens);
      $("#generate-panel").hidden = false;
    }
    for (const c of categories) {
      const row = body.insertRow();
      cell(row, c.name);
      cell(row, fmtInt(c.documents));
      cell(row, fmtInt(c.tokens));
      cell(row, fmtInt(c.features));
    }
    const order = $("#order");
    const maxOrder = (info.settings && info.settings.max_order) || 1;
    order.replaceChildren();
    for (let k = 1; k <= maxOrder; k++) {
      order.add(new Option(k === 1 ? "1 (words)" : k === 2 ? "2 (bigrams)" : String(k), String(k)));
    }
    showFigure();
  } catch (err) {
    $("#summary").textContent = `could not read the store: ${err.message}`;
  }
}

function showFigure() {
  const order = $("#order").value || "1";
  $("#figure-status").textContent = "drawing the figure…";
  $("#figure-status").hidden = false;
  $("#figure").src = `/saturation.png?order=${order}`;
  $("#svg-link").href = `/saturation.svg?order=${order}`;
}

async function classify(event) {
  event.preventDefault();
  const button = $("#classify");
  const request = {
    text: $("#text").value,
    top: Number($("#top").value) || 5,
    terms: Number($("#terms").value) || 12,
    explain: true,
  };
  if ($("#model").value) request.model = $("#model").value;
  button.disabled = true;
  $("#error").hidden = true;
  try {
    const answer = await getJSON("/classify", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    showAnswer(answer);
  } catch (err) {
    $("#error").textContent = err.message;
    $("#error").hidden = false;
    $("#result").hidden = true;
  } finally {
    button.disabled = false;
  }
}

async function generate(event) {
  event.preventDefault();
  const request = { length: Number($("#gen-length").value) || 60 };
  if ($("#gen-category").value) request.category = $("#gen-category").value;
  if ($("#gen-seed").value !== "") request.seed = Number($("#gen-seed").value);
  if ($("#gen-prompt").value) request.prompt = $("#gen-prompt").value;
  $("#generate").disabled = true;
  try {
    const answer = await getJSON("/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    $("#gen-text").textContent = answer.text;
  } catch (err) {
    $("#gen-text").textContent = err.message;
  } finally {
    $("#generate").disabled = false;
  }
}

function showAnswer(answer) {
  const top = $("#top-table tbody");
  top.replaceChildren();
  for (const t of answer.top) {
    const row = top.insertRow();
    cell(row, t.label);
    cell(row, t.probability.toFixed(4));
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, Math.round(120 * t.probability))}px`;
    row.insertCell().append(bar);
  }
  const exp = answer.explanation;
  $("#winner").textContent = exp.winner;
  $("#runner-up").textContent = exp.runner_up;
  $("#why").textContent =
    `log-odds ${fmtNum(exp.log_odds)} = prior ${fmtNum(exp.prior)} + ${fmtInt(exp.n_features)} features ` +
    `(model ${answer.model}, α ${answer.alpha}; ${fmtInt(exp.n_unseen)} never seen in training)`;
  const body = $("#explain-table tbody");
  body.replaceChildren();
  for (const f of exp.features) {
    const row = body.insertRow();
    cell(row, f.feature);
    cell(row, String(f.order));
    cell(row, String(f.count));
    cell(row, fmtNum(f.contribution), f.contribution >= 0 ? "pos" : "neg");
  }
  const rest = body.insertRow();
  cell(rest, "(all other features)");
  cell(rest, "");
  cell(rest, "");
  cell(rest, fmtNum(exp.rest), exp.rest >= 0 ? "pos" : "neg");
  const total = body.insertRow();
  total.className = "total";
  cell(total, "log-odds (with the prior)");
  cell(total, "");
  cell(total, "");
  cell(total, fmtNum(exp.log_odds));
  $("#result").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#classify-form").addEventListener("submit", classify);
  $("#generate-form").addEventListener("submit", generate);
  $("#order").addEventListener("change", showFigure);
  $("#figure").addEventListener("load", () => { $("#figure-status").hidden = true; });
  $("#figure").addEventListener("error", () => {
    $("#figure-status").textContent = "the figure could not be drawn (is the store empty?)";
  });
  loadStore();
});
