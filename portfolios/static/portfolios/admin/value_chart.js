// Draws the portfolio page's value-against-benchmark chart (vendored Chart.js) from the page's JSON.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("value-chart-data").textContent);
  new Chart(document.getElementById("value-chart-canvas"), {
    type: "line",
    data: {
      labels: data.dates,
      datasets: [
        { label: "portfolio", data: data.portfolio, borderColor: "#0d6efd", backgroundColor: "#0d6efd",
          pointRadius: 0, borderWidth: 1.5 },
        { label: data.benchmark_symbol, data: data.benchmark, borderColor: "#fd7e14", backgroundColor: "#fd7e14",
          pointRadius: 0, borderWidth: 1.5, spanGaps: true },
      ],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { title: { display: true, text: "rebased to 100" } } },
    },
  });
})();
