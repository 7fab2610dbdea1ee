// Filters of the pytest-phyjudge HTML report: plain JavaScript, runs from file://.
(function () {
  "use strict";
  var status = document.getElementById("f-status");
  var axis = document.getElementById("f-axis");
  var domain = document.getElementById("f-domain");
  var text = document.getElementById("f-text");
  var count = document.getElementById("f-count");
  var cases = Array.prototype.slice.call(document.querySelectorAll("article.case"));

  // "SA:pass gravity:fail" -> {SA: "pass", gravity: "fail"}
  function axesOf(element) {
    var found = {};
    element.dataset.axes.trim().split(/\s+/).forEach(function (pair) {
      var cut = pair.lastIndexOf(":");
      if (cut > 0) { found[pair.slice(0, cut)] = pair.slice(cut + 1); }
    });
    return found;
  }

  function matches(element) {
    var axes = axesOf(element);
    if (axis.value && !(axis.value in axes)) { return false; }
    // With an axis chosen, the status is that axis' verdict; else the case's.
    var verdict = axis.value ? axes[axis.value] : element.dataset.status;
    if (status.value && verdict !== status.value) { return false; }
    if (domain.value && element.dataset.domains.split(" ").indexOf(domain.value) < 0) { return false; }
    var words = text.value.trim().toLowerCase();
    return !words || element.dataset.text.indexOf(words) >= 0;
  }

  function apply() {
    var shown = 0;
    cases.forEach(function (element) {
      var keep = matches(element);
      element.classList.toggle("hidden", !keep);
      shown += keep ? 1 : 0;
    });
    count.textContent = "showing " + shown + " of " + cases.length;
  }

  [status, axis, domain].forEach(function (el) { el.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  document.getElementById("f-reset").addEventListener("click", function () {
    setTimeout(apply, 0);  // after the form has reset its fields
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.pick"), function (button) {
    button.addEventListener("click", function () {
      if (button.dataset.axis !== undefined) { axis.value = button.dataset.axis; domain.value = ""; }
      if (button.dataset.domain !== undefined) { domain.value = button.dataset.domain; axis.value = ""; }
      apply();
      document.getElementById("filters").scrollIntoView();
    });
  });
  apply();
}());
