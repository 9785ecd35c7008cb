/* A tracking source's page: the traffic chart, the debugger refreshed every few seconds
   (payloads opened by the reader stay open), and the copy buttons of the key page. */
(function () {
  "use strict";
  const REFRESH_MS = 4000;

  document.querySelectorAll(".source-copy").forEach((button) => {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      if (!target) { return; }
      try {
        await navigator.clipboard.writeText(target.textContent);
      } catch (error) {  // no clipboard (plain http): select the text for Ctrl+C
        const range = document.createRange();
        range.selectNodeContents(target);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      button.classList.add("copied");
      setTimeout(() => button.classList.remove("copied"), 1500);
    });
  });

  const page = document.getElementById("source-page");
  if (!page) { return; }
  let chart = null;

  function drawChart(data) {
    const target = document.getElementById("traffic-chart");
    if (!target || !window.echarts) { return; }
    chart = chart || echarts.init(target);
    const colours = {accepted: "#3a8c3f", duplicate: "#8a8a8a", dropped: "#d39e00", rejected: "#ba2121"};
    chart.setOption({
      tooltip: {trigger: "axis"},
      legend: {data: data.series.map((s) => s.name)},
      grid: {left: 50, right: 20, bottom: 30, top: 40},
      xAxis: {type: "category", data: data.hours},
      yAxis: {type: "value", minInterval: 1},
      series: data.series.map((s) => ({name: s.name, type: "bar", stack: "all", data: s.data,
                                       itemStyle: {color: colours[s.code]}})),
    });
    data.series.forEach((s) => {
      const cell = document.querySelector(`[data-total="${s.code}"]`);
      if (cell) { cell.textContent = s.total; }
    });
  }

  function replaceTable(containerId, html) {
    const container = document.getElementById(containerId);
    if (!container || html === undefined) { return; }
    const open = new Set([...container.querySelectorAll("details[open]")].map((d) => d.dataset.id));
    container.innerHTML = html;
    container.querySelectorAll("details").forEach((d) => { if (open.has(d.dataset.id)) { d.open = true; } });
  }

  async function refresh() {
    try {
      const response = await fetch(page.dataset.debuggerUrl, {headers: {"Accept": "application/json"},
                                                              credentials: "same-origin"});
      if (response.ok) {
        const answer = await response.json();
        replaceTable("debugger-messages", answer.messages_html);
        replaceTable("debugger-rejected", answer.rejected_html);
        Object.entries(answer.totals).forEach(([code, total]) => {
          const cell = document.querySelector(`[data-all-total="${code}"]`);
          if (cell) { cell.textContent = total; }
        });
        drawChart(answer.chart);
        const stamp = document.getElementById("debugger-refreshed");
        if (stamp) { stamp.textContent = new Date().toLocaleTimeString(); }
      }
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  const data = document.getElementById("traffic-data");
  if (data) { drawChart(JSON.parse(data.textContent)); }
  window.addEventListener("resize", () => chart && chart.resize());
  setTimeout(refresh, REFRESH_MS);
})();
