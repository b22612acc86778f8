// Sorting and filtering for the book's check table (#checks): click a header to sort, type in
// the box to keep the rows that contain the text, pick a kind or a verdict.
// Written here rather than taken from DataTables: its only pip-shipped build (itables) is an ES
// module, which browsers refuse to load from file://, and the book must work opened from disk.
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("checks");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("checks-filter");
  var kind = document.getElementById("checks-kind");
  var verdict = document.getElementById("checks-verdict");
  var count = document.getElementById("checks-count");

  function filter() {
    var needle = text.value.toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var keep = row.textContent.toLowerCase().indexOf(needle) >= 0 &&
        (!kind.value || row.dataset.kind === kind.value) &&
        (!verdict.value || row.dataset.verdict === verdict.value);
      row.hidden = !keep;
      shown += keep ? 1 : 0;
    });
    count.textContent = shown + " of " + rows.length + " checks shown";
  }

  function sortBy(column, header) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    // Cells with a numeric data-sort (the measured values) sort as numbers, before the rest.
    rows.sort(function (a, b) {
      var x = parseFloat(a.cells[column].dataset.sort);
      var y = parseFloat(b.cells[column].dataset.sort);
      var order;
      if (!isNaN(x) && !isNaN(y)) { order = x - y; }
      else if (!isNaN(x) || !isNaN(y)) { order = isNaN(x) ? 1 : -1; }
      else { order = a.cells[column].textContent.localeCompare(b.cells[column].textContent); }
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
    header.addEventListener("click", function () { sortBy(column, header); });
  });
  [text, kind, verdict].forEach(function (control) {
    control.addEventListener("input", filter);
  });
  filter();
});
