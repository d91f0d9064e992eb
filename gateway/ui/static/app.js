// Keyboard shortcuts for the review page: j/k move, Enter/o open, c/d decide, u back.
// Plain JavaScript, no build step; every action is also a link or a button without it.
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
  var selected = -1;

  function select(i) {
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, n) { r.classList.toggle("selected", n === selected); });
    rows[selected].scrollIntoView({ block: "nearest" });
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) window.location.href = link.href;
  }

  rows.forEach(function (row) {
    row.addEventListener("click", function (e) {
      if (e.target.tagName !== "A") window.location.href = row.getAttribute("data-href");
    });
  });
  if (page === "queue" && rows.length) select(0);

  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (page === "queue") {
      if (e.key === "j") select(selected + 1);
      else if (e.key === "k") select(selected - 1);
      else if ((e.key === "Enter" || e.key === "o") && selected >= 0) {
        window.location.href = rows[selected].getAttribute("data-href");
      } else return;
    } else if (page === "detail") {
      if (e.key === "j") follow("next");
      else if (e.key === "k") follow("prev");
      else if (e.key === "u") follow("back");
      else if (e.key === "c") document.getElementById("confirm").click();
      else if (e.key === "d") document.getElementById("dismiss").click();
      else return;
    } else return;
    e.preventDefault();
  });
})();
