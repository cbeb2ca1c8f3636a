// nasforge dashboard: poll the JSON endpoints and update the page in place (no reload).
// Text from the store (run names, architectures, errors) is set with textContent, never
// parsed as markup; the only markup inserted is the curve SVG the server drew.
(function () {
  const refresh = 1000 * parseFloat(document.body.getAttribute("data-refresh") || "2");

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }
  function cell(tag, text, className) {
    const element = document.createElement(tag);
    element.textContent = text;
    if (className) element.className = className;
    return element;
  }
  function showError(message) {
    let box = document.getElementById("live-error");
    if (!box) {
      box = cell("p", "", "error");
      box.id = "live-error";
      document.querySelector("header").after(box);
    }
    box.textContent = message;
  }
  function clearError() {
    const box = document.getElementById("live-error");
    if (box) box.remove();
  }
  function fmt(value) {
    return value === null || value === undefined ? "" : Number(value).toPrecision(4).replace(/\.?0+$/, "");
  }

  // the list of runs -------------------------------------------------------------------------
  const runsTable = document.getElementById("runs");
  if (runsTable) {
    async function updateRuns() {
      try {
        const runs = await getJSON(runsTable.getAttribute("data-live"));
        const body = runsTable.tBodies[0];
        body.replaceChildren();
        if (!runs.length) body.appendChild(cell("tr", "")).appendChild(cell("td", "no runs in this store yet"));
        runs.forEach((r) => {
          const row = document.createElement("tr");
          row.setAttribute("data-run", r.name);
          const link = cell("a", r.name);
          link.href = "/runs/" + encodeURIComponent(r.name);
          row.appendChild(document.createElement("td")).appendChild(link);
          row.appendChild(cell("td", r.status, "status-" + r.status));
          [r.strategy, r.space, r.estimator].forEach((v) => row.appendChild(cell("td", v || "")));
          [r.counts.complete, r.counts.failed, r.counts.running].forEach((v) => row.appendChild(cell("td", String(v), "num")));
          row.appendChild(cell("td", r.best ? fmt(r.best.objective) : "", "num"));
          row.appendChild(cell("td", r.updated));
          body.appendChild(row);
        });
        clearError();
      } catch (err) {
        showError("live update failed: " + err.message);
      }
    }
    setInterval(updateRuns, refresh);
  }

  // one run ----------------------------------------------------------------------------------
  const main = document.getElementById("run");
  if (!main) return;
  const api = main.getAttribute("data-api");
  const curveUrl = main.getAttribute("data-curve");
  const table = document.getElementById("trials");
  const view = { offset: 0, limit: 50, sort: "number", order: "desc", state: "", q: "" };
  let sortable = {};

  function renderTable(page) {
    sortable = page.sortable;
    const head = table.tHead.rows[0];
    head.replaceChildren();
    page.columns.forEach((name) => {
      const th = cell("th", name);
      const key = sortable[name];
      if (key) {
        th.setAttribute("data-sort", key);
        if (key === view.sort) th.className = view.order === "desc" ? "sorted-desc" : "sorted-asc";
        th.addEventListener("click", () => {
          view.order = view.sort === key && view.order === "desc" ? "asc" : "desc";
          view.sort = key;
          view.offset = 0;
          loadTrials();
        });
      }
      head.appendChild(th);
    });
    const body = table.tBodies[0];
    body.replaceChildren();
    page.rows.forEach((row) => {
      const tr = document.createElement("tr");
      tr.className = row.state;
      tr.setAttribute("data-state", row.state);
      tr.setAttribute("data-trial", row.trial);
      row.cells.forEach((c) => tr.appendChild(cell("td", c.text, c.kind)));
      body.appendChild(tr);
    });
    const last = Math.min(page.offset + page.rows.length, page.total);
    document.getElementById("page-info").textContent =
      page.total ? `trials ${page.offset + 1}–${last} of ${page.total}` : "no trials match";
    document.getElementById("prev").disabled = page.offset === 0;
    document.getElementById("next").disabled = last >= page.total;
  }
  async function loadTrials() {
    const query = new URLSearchParams({
      offset: view.offset, limit: view.limit, sort: view.sort, order: view.order,
      state: view.state, q: view.q,
    });
    try {
      renderTable(await getJSON(api + "/trials?" + query));
      clearError();
    } catch (err) {
      showError("could not load trials: " + err.message);
    }
  }
  async function loadCurve(version) {
    const box = document.getElementById("curve");
    if (box.getAttribute("data-version") === version || box.getAttribute("data-pending") === version) return;
    box.setAttribute("data-pending", version);  // one fetch per version, however often asked
    try {
      const response = await fetch(curveUrl, { cache: "no-store" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      box.innerHTML = await response.text();
      box.setAttribute("data-version", version);
    } finally {
      // a failed fetch is tried again at the next refresh; a newer version's mark is left alone
      if (box.getAttribute("data-pending") === version) box.removeAttribute("data-pending");
    }
  }
  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }
  function apply(run) {
    const status = document.getElementById("status");
    status.textContent = run.status;
    status.className = "status-" + run.status;
    setText("updated", run.updated);
    setText("complete", run.counts.complete);
    setText("failed", run.counts.failed);
    setText("running", run.counts.running);
    if (run.progress !== null) document.getElementById("progress-bar").style.width = (100 * run.progress).toFixed(1) + "%";
    const best = document.getElementById("best");
    best.replaceChildren();
    if (run.best) {
      best.append(`trial #${run.best.trial}: objective ${fmt(run.best.objective)} `);
      best.appendChild(cell("code", run.best.arch));
    } else {
      best.textContent = "no complete trial yet";
    }
    const failures = document.getElementById("failures");
    failures.replaceChildren();
    if (!run.failures.length) failures.appendChild(cell("li", "none", "none"));
    run.failures.forEach((f) => failures.appendChild(cell("li", `#${f.trial}: ${f.error}`)));
  }
  // status, curve and trials are fetched side by side: a page is as slow as its slowest part
  async function update() {
    try {
      await Promise.all([
        getJSON(api).then((run) => { apply(run); return loadCurve(run.curve_version); }),
        loadTrials(),
      ]);
      clearError();
    } catch (err) {
      showError("live update failed: " + err.message);
    }
  }
  let timer = null;
  document.getElementById("filter").addEventListener("input", (e) => {
    view.q = e.target.value;
    view.offset = 0;
    clearTimeout(timer);
    timer = setTimeout(loadTrials, 250);
  });
  document.getElementById("state-filter").addEventListener("change", (e) => {
    view.state = e.target.value;
    view.offset = 0;
    loadTrials();
  });
  document.getElementById("prev").addEventListener("click", () => {
    view.offset = Math.max(0, view.offset - view.limit);
    loadTrials();
  });
  document.getElementById("next").addEventListener("click", () => {
    view.offset += view.limit;
    loadTrials();
  });
  loadCurve(main.getAttribute("data-curve-version"));  // the version the page was made with
  update();
  setInterval(update, refresh);
})();
