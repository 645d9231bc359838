// Live campaign pages: the server sends the updated fragment as
// server-sent events; replace it in place.
document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("live");
  if (!live || !live.dataset.stream || !window.EventSource) return;
  var es = new EventSource(live.dataset.stream);
  es.addEventListener("update", function (e) { live.innerHTML = e.data; live.dataset.updated = String(Date.now()); });
});
