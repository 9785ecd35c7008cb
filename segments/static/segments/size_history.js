// The segment page's size history: members (left axis), entered and exited (bars).
(function () {
  "use strict";
  const source = document.getElementById("size-history-data");
  const target = document.getElementById("size-history");
  if (!source || !target || !window.echarts) return;
  const data = JSON.parse(source.textContent);
  const names = Object.keys(data.series);
  echarts.init(target).setOption({
    tooltip: {trigger: "axis"},
    legend: {data: names},
    grid: {left: 60, right: 60, bottom: 30, top: 40},
    xAxis: {type: "category", data: data.labels},
    yAxis: [{type: "value", name: names[0]}, {type: "value", name: names[1] + " / " + names[2]}],
    series: [
      {name: names[0], type: "line", data: data.series[names[0]], smooth: true},
      {name: names[1], type: "bar", yAxisIndex: 1, data: data.series[names[1]]},
      {name: names[2], type: "bar", yAxisIndex: 1, data: data.series[names[2]]},
    ],
  });
})();
