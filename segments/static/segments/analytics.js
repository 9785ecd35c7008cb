// Behaviour analysis charts (Apache ECharts): one chart per page, drawn from the
// "analysis-data" JSON the server renders (labels already in the reader's language).
(function () {
  "use strict";
  const source = document.getElementById("analysis-data");
  const target = document.getElementById("analysis-chart");
  if (!source || !target || !window.echarts) return;
  const data = JSON.parse(source.textContent);
  const chart = echarts.init(target);
  const draw = {
    funnel: function () {
      return {
        tooltip: {trigger: "axis"},
        grid: {left: 80, right: 40, bottom: 60, top: 30},
        xAxis: {type: "category", data: data.labels, axisLabel: {interval: 0, width: 140, overflow: "break"}},
        yAxis: {type: "value"},
        series: [{
          name: data.series, type: "bar", data: data.counts, barMaxWidth: 80,
          label: {show: true, position: "top", formatter: function (p) { return p.value + "\n" + data.shares[p.dataIndex]; }},
        }],
      };
    },
    retention: function () {
      return {
        tooltip: {formatter: function (p) { return data.cohorts[p.value[1]] + " · " + data.offsets[p.value[0]] + ": " + p.value[2] + "% (" + p.value[3] + ")"; }},
        grid: {left: 110, right: 30, bottom: 70, top: 20},
        xAxis: {type: "category", data: data.offsets, splitArea: {show: true}},
        yAxis: {type: "category", data: data.cohorts, inverse: true, splitArea: {show: true},
                axisLabel: {formatter: function (v, i) { return v + " (" + data.sizes[i] + ")"; }}},
        visualMap: {min: 0, max: Math.max(1, ...data.cells.map(function (c) { return c[2]; })), calculable: true, dimension: 2,
                    orient: "horizontal", left: "center", bottom: 0, inRange: {color: ["#f7fbff", "#08519c"]}},
        series: [{type: "heatmap", data: data.cells, label: {show: true, formatter: function (p) { return p.value[2] + "%"; }}}],
      };
    },
    paths: function () {
      return {
        tooltip: {trigger: "item"},
        series: [{type: "sankey", data: data.nodes, links: data.links, emphasis: {focus: "adjacency"},
                  nodeAlign: "left", nodeGap: 10, left: 20, right: 160, label: {formatter: function (p) { return p.name.split("·").slice(1).join("·"); }}}],
      };
    },
    lifecycle: function () {
      return {
        tooltip: {trigger: "axis"},
        legend: {data: data.series.map(function (s) { return s.name; })},
        grid: {left: 80, right: 30, bottom: 40, top: 40},
        xAxis: {type: "category", data: data.labels},
        yAxis: {type: "value"},
        // Each stage in its own colour, the same as on the dashboard.
        series: data.series.map(function (s) { return {name: s.name, type: "bar", stack: "stages", data: s.data, itemStyle: {color: s.color}}; }),
      };
    },
    rfm: function () {
      return {
        tooltip: {formatter: function (p) { return "R" + (p.value[1] + 1) + " F" + (p.value[0] + 1) + " · " + p.value[4] + "<br>" + data.customers + ": " + p.value[2] + "<br>" + data.money + ": ¥" + Math.round(p.value[3]); }},
        grid: {left: 60, right: 30, bottom: 70, top: 20},
        xAxis: {type: "category", data: data.x},
        yAxis: {type: "category", data: data.y},
        // dimension 2, the customers: by default a heat map is coloured by its cells' last
        // value, here the group's name, which left every cell blank.
        visualMap: {min: 0, max: Math.max(1, ...data.cells.map(function (c) { return c[2]; })), calculable: true, dimension: 2,
                    orient: "horizontal", left: "center", bottom: 0, inRange: {color: ["#fff7ec", "#b30000"]}},
        series: [{type: "heatmap", data: data.cells, label: {show: true, formatter: function (p) { return p.value[2] + "\n" + p.value[4]; }}}],
      };
    },
    dashboard: function () {
      const pie = document.getElementById("lifecycle-chart");
      if (pie) {
        echarts.init(pie).setOption({
          tooltip: {trigger: "item"},
          // The share under the stage's name, so that a long name (潜在客户（尚无行为）) fits beside the ring.
          series: [{type: "pie", radius: ["30%", "58%"], data: data.lifecycle, label: {formatter: "{b}\n{d}%"}}],
        });
      }
      return {
        tooltip: {trigger: "axis"},
        grid: {left: 70, right: 20, bottom: 30, top: 20},
        xAxis: {type: "category", data: data.days},
        yAxis: {type: "value"},
        series: [{name: data.events_label, type: "line", smooth: true, areaStyle: {}, data: data.events}],
      };
    },
  };
  chart.setOption(draw[data.kind]());
  window.addEventListener("resize", function () { chart.resize(); });
})();
