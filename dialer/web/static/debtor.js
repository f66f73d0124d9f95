// Debtor pages: the "copy the Pix code" button (the page works without it).
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b) return;
  var field = document.getElementById(b.getAttribute("data-copy"));
  if (!field) return;
  field.select();
  if (navigator.clipboard) navigator.clipboard.writeText(field.value);
  else document.execCommand("copy");
});
