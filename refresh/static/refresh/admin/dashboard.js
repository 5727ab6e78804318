// Draws the refresh dashboard's charts (vendored Chart.js) from the page's JSON data.
"use strict";
(function () {
  const STATUS_COLOURS = {
    queued: "#6c757d", in_progress: "#0d6efd", success: "#198754", partial: "#fd7e14",
    failed: "#dc3545", cancelled: "#adb5bd", timeout: "#6f42c1", skipped: "#20c997",
  };
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const common = { animation: false, responsive: true, maintainAspectRatio: false };
  const charts = {};

  function draw(id, config) {
    const canvas = document.getElementById(id);
    charts[id] = new Chart(canvas, { ...config, options: { ...common, ...config.options } });
  }

  const runs = data.runs_per_day;
  draw("chart-runs-per-day", {
    type: "bar",
    data: {
      labels: runs.days,
      datasets: Object.entries(runs.series).map(([status, counts]) => ({
        label: status, data: counts, backgroundColor: STATUS_COLOURS[status] || "#999",
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });

  const rate = data.success_rate;
  draw("chart-success-rate", {
    type: "line",
    data: {
      labels: rate.days,
      datasets: [{
        label: "success rate (%)", borderColor: STATUS_COLOURS.success, backgroundColor: STATUS_COLOURS.success,
        spanGaps: true, data: rate.daily.map((value) => (value === null ? null : Math.round(value * 1000) / 10)),
      }],
    },
    options: { scales: { y: { min: 0, max: 100 } } },
  });

  draw("chart-durations", {
    type: "bar",
    data: {
      labels: data.durations.map((row) => row.kind),
      datasets: [
        { label: "p50 (s)", backgroundColor: "#0d6efd", data: data.durations.map((row) => row.p50_ms / 1000) },
        { label: "p95 (s)", backgroundColor: "#fd7e14", data: data.durations.map((row) => row.p95_ms / 1000) },
      ],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });

  const use = data.provider_use;
  draw("chart-credits", {
    type: "bar",
    data: {
      labels: use.days,
      datasets: [
        { label: "credits", backgroundColor: "#6f42c1", data: use.credits },
        { label: "calls", backgroundColor: "#adb5bd", data: use.calls },
      ],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });

  const freshness = data.freshness;
  draw("chart-freshness", {
    type: "bar",
    data: {
      labels: [...freshness.buckets.map((b) => b.label), "never"],
      datasets: [{
        label: "assets",
        backgroundColor: ["#198754", "#20c997", "#fd7e14", "#dc3545", "#6c757d"],
        data: [...freshness.buckets.map((b) => b.count), freshness.never_fetched],
      }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } },
               scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });

  // Browser tests read this to know every chart was drawn.
  window.refreshDashboardCharts = charts;
})();
