// Filters the index table as you type. The page works without it: served, the form filters
// on the server; as a static site (no server), the form appears only when this runs.
(function () {
  var form = document.querySelector("form.filter");
  if (!form) return;
  form.hidden = false;
  var text = form.querySelector("[name=q]");
  var format = form.querySelector("[name=format]");
  var rows = document.querySelectorAll("table.models tbody tr");
  var shown = document.getElementById("shown");
  var none = document.getElementById("none-shown");
  function apply() {
    var words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    var count = 0;
    rows.forEach(function (row) {
      var ok = (!format.value || row.dataset.format === format.value) &&
        words.every(function (w) { return row.dataset.search.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) count++;
    });
    if (shown) shown.textContent = count;
    if (none) none.hidden = count > 0;
  }
  text.addEventListener("input", apply);
  format.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
})();
