// nasforge report: sort a trial table by a click on its header, filter it by text and state.
// Plain DOM code, no library: the report must open without network access.
(function () {
  function cellValue(row, index) {
    const cell = row.cells[index];
    const raw = cell.getAttribute("data-value");
    const text = raw !== null ? raw : cell.textContent.trim();
    const number = parseFloat(text);
    return text !== "" && !isNaN(number) && isFinite(text) ? number : text.toLowerCase();
  }
  function sortBy(table, index, header) {
    const body = table.tBodies[0];
    const descending = header.classList.contains("sorted-asc");
    table.querySelectorAll("th").forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
    header.classList.add(descending ? "sorted-desc" : "sorted-asc");
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValue(a, index), y = cellValue(b, index);
      if (x === y) return 0;
      if (x === "") return 1;  // missing values last either way
      if (y === "") return -1;
      const order = x < y ? -1 : 1;
      return descending ? -order : order;
    });
    rows.forEach((row) => body.appendChild(row));
  }
  function filter(table, text, state) {
    const needle = text.toLowerCase();
    let shown = 0;
    Array.from(table.tBodies[0].rows).forEach((row) => {
      const ok = (!needle || row.textContent.toLowerCase().includes(needle)) &&
        (!state || row.getAttribute("data-state") === state);
      row.style.display = ok ? "" : "none";
      if (ok) shown += 1;
    });
    const counter = document.getElementById(table.id + "-shown");
    if (counter) counter.textContent = shown;
  }
  document.querySelectorAll("table.trials").forEach((table) => {
    table.querySelectorAll("th").forEach((th, index) => {
      th.addEventListener("click", () => sortBy(table, index, th));
    });
    const text = document.getElementById(table.id + "-filter");
    const state = document.getElementById(table.id + "-state");
    const apply = () => filter(table, text ? text.value : "", state ? state.value : "");
    if (text) text.addEventListener("input", apply);
    if (state) state.addEventListener("change", apply);
  });
})();
