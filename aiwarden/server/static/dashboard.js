/* aiwarden dashboard: draws the charts the server describes (JSON next to each chart),
   localises times, and shows htmx errors. No inline script anywhere: the page's CSP
   allows scripts from this origin only. */
(function () {
  "use strict";

  // Okabe–Ito: distinguishable with every common colour-vision deficiency.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  var SEVERITY = {critical: "#D55E00", warning: "#B8860B", info: "#6B7280"};
  var FIRING = {critical: "rgba(213,94,0,0.13)", warning: "rgba(230,159,0,0.16)"};
  var charts = {};
  window.aiwardenCharts = charts;  // id -> {chart, points}: read by the browser tests

  function fmt(v, unit) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    var a = Math.abs(v), s;
    if (a !== 0 && (a < 0.001 || a >= 1e6)) s = v.toExponential(2);
    else if (a >= 100) s = Math.round(v).toLocaleString();
    else s = (+v.toPrecision(3)).toString();
    return unit ? s + " " + unit : s;
  }

  // Axis ticks are round numbers: print each in full (fmt's three digits made 150.2, 150.4
  // and 150.6 all "150"), so no two ticks of an axis share a label.
  function tick(v) {
    if (v === null || v === undefined || isNaN(v)) return "";
    var x = +v.toPrecision(12), a = Math.abs(x);
    if (a !== 0 && (a < 0.001 || a >= 1e9)) return x.toExponential().replace("e+", "e");
    return x.toLocaleString(undefined, {maximumFractionDigits: 10});
  }
  window.aiwardenTick = tick;  // read by the browser tests

  function base(spec) {
    return {
      animation: false,
      color: PALETTE,
      aria: {enabled: true, decal: {show: false}},
      textStyle: {fontFamily: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
      grid: {left: 8, right: 16, top: 34, bottom: 8, containLabel: true},
      legend: {top: 0, left: 0, type: "scroll", itemWidth: 18, itemHeight: 10, textStyle: {fontSize: 11}}
    };
  }

  function marks(spec) {
    var lines = (spec.thresholds || []).filter(function (t) { return t.value !== null; }).map(function (t) {
      return {yAxis: t.value, name: t.label, lineStyle: {color: SEVERITY[t.severity] || "#6B7280",
        type: t.severity === "info" ? "dotted" : "dashed", width: t.severity === "info" ? 1 : 1.5},
        // reference lines label their left end, rule thresholds their right end
        label: {formatter: t.label, position: t.severity === "info" ? "insideStartTop" : "insideEndTop", fontSize: 10,
          color: SEVERITY[t.severity] || "#6B7280"}};
    });
    // change points of the concept-drift detectors: vertical lines at their prediction time
    (spec.events || []).forEach(function (e) {
      lines.push({xAxis: e.at, name: e.detail || e.label, lineStyle: {color: "#CC79A7", type: "solid", width: 1.5},
        label: {formatter: e.label, position: "insideEndTop", fontSize: 10, color: "#CC79A7"}});
    });
    var areas = (spec.firing || []).map(function (f) {
      return [{xAxis: f.from, name: "firing: " + f.label, itemStyle: {color: FIRING[f.severity] || FIRING.critical},
        label: {show: false}}, {xAxis: f.to}];
    });
    return {
      markLine: {symbol: "none", silent: true, data: lines, animation: false},
      markArea: {silent: true, data: areas}
    };
  }

  // tooltips are HTML: names and values from ingested data are escaped first
  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }

  function timeOption(spec) {
    var o = base(spec), unit = spec.unit, points = 0;
    o.xAxis = {type: "time", min: spec.start, max: spec.end, axisLabel: {hideOverlap: true, fontSize: 11}};
    o.yAxis = {type: "value", scale: !!spec.scale, axisLabel: {fontSize: 11, formatter: tick}};
    o.tooltip = {trigger: "axis", formatter: function (ps) {
      if (!ps.length) return "";
      var out = [new Date(ps[0].value[0]).toLocaleString()];
      ps.forEach(function (p) {
        if (p.seriesName.charAt(0) === "\u200b") return;
        out.push(p.marker + " " + esc(p.seriesName) + ": <b>" + fmt(p.value[1], unit) + "</b>");
      });
      return out.join("<br>");
    }};
    o.series = spec.series.map(function (s, i) {
      var filled = s.data.filter(function (d) { return d[1] !== null; }).length;
      points += filled;
      // isolated points between gaps are invisible without a symbol
      var out = {name: s.name, type: s.type, data: s.data, showSymbol: !!s.symbols || filled < 40,
        symbolSize: 5, connectNulls: !!s.connect,
        lineStyle: {width: 2, type: s.dashed ? "dashed" : "solid"}, barMaxWidth: 14};
      if (s.area) out.areaStyle = {opacity: 0.18};
      return out;
    });
    if (spec.band) {
      var lower = spec.band.lower, upper = spec.band.upper;
      o.series.push({name: "\u200blower", type: "line", data: lower, stack: "band", showSymbol: false,
        lineStyle: {opacity: 0}, silent: true, legendHoverLink: false});
      o.series.push({name: "\u200b" + spec.band.name, type: "line", showSymbol: false, stack: "band",
        lineStyle: {opacity: 0}, silent: true, areaStyle: {color: "rgba(230,159,0,0.22)"},
        data: upper.map(function (p, i) {
          var lo = lower[i][1];
          return [p[0], p[1] === null || lo === null ? null : p[1] - lo];
        })});
      o.legend.data = spec.series.map(function (s) { return s.name; });
    }
    var first = o.series[0];
    if (first) Object.assign(first, marks(spec));
    if (!points && spec.series.length) o.graphic = {type: "text", left: "center", top: "middle",
      style: {text: "no data in this range", fill: "#5b6472", fontSize: 13}};
    return {option: o, points: points};
  }

  function heatOption(spec, width) {
    var o = base(spec), left = labelWidth(spec.y, width);
    o.grid = {left: left, right: 16, top: 8, bottom: 60, containLabel: false};
    var step = spec.step;
    o.xAxis = {type: "category", data: spec.x.map(function (t) {
      var d = new Date(t);
      return step >= 86400000 ? d.toLocaleDateString() :
        d.toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
    }), axisLabel: {fontSize: 10, hideOverlap: true}, splitArea: {show: false}};
    o.yAxis = {type: "category", data: spec.y, inverse: true,
      axisLabel: {fontSize: 11, width: left - 10, overflow: "truncate"}};
    o.xAxis.axisLabel.margin = 6;
    // Luminance falls as severity rises, so the scale reads in grey too.
    o.visualMap = {type: "piecewise", orient: "horizontal", left: "center", bottom: 0, dimension: 2,
      textStyle: {fontSize: 11}, itemWidth: 16, itemHeight: 10, pieces: [
        {lt: 0.5, color: "#e8eef5", label: "< 0.5"},
        {gte: 0.5, lt: 1, color: "#a9c4de", label: "0.5–1"},
        {gte: 1, lt: 1.5, color: "#f3b664", label: "▲ 1–1.5"},
        {gte: 1.5, lt: 2, color: "#d8751a", label: "1.5–2"},
        {gte: 2, color: "#7f3b08", label: "≥ 2"}]};
    o.tooltip = {formatter: function (p) {
      var d = p.data;
      return new Date(spec.x[d[0]]).toLocaleString() + "<br>" + esc(spec.columns[d[1]]) +
        ": severity <b>" + fmt(d[2]) + "</b> (" + esc(d[4] || spec.method) + " " + fmt(d[3]) + ")" +
        (d[5] ? " ▲ drifted" : "");
    }};
    o.series = [{type: "heatmap", data: spec.data, progressive: 0,
      itemStyle: {borderColor: "#fff", borderWidth: 0.5},
      emphasis: {itemStyle: {borderColor: "#000", borderWidth: 1}}}];
    return {option: o, points: spec.data.length};
  }

  function labelWidth(labels, width) {
    var longest = labels.reduce(function (m, l) { return Math.max(m, String(l).length); }, 0);
    var cap = Math.max(90, Math.round((width || 800) * 0.35));  // leave the plot most room
    return Math.max(48, Math.min(260, cap, Math.round(longest * 6.6 + 14)));
  }

  var HATCH = {symbol: "rect", dashArrayX: [1, 0], dashArrayY: [2, 5], rotation: -Math.PI / 4,
    color: "rgba(0,0,0,0.28)"};

  function barsOption(spec, horizontal, width) {
    var o = base(spec), unit = spec.unit, cat = {type: "category", data: spec.categories,
      axisLabel: {fontSize: 11, interval: horizontal ? 0 : "auto", hideOverlap: !horizontal,
        rotate: !horizontal && spec.categories.length > 8 ? 35 : 0}};
    var val = {type: "value", max: spec.max, axisLabel: {fontSize: 11, formatter: tick}};
    if (horizontal) {
      var left = labelWidth(spec.categories, width);
      o.grid = {left: left, right: 24, top: 34, bottom: 8, containLabel: false};
      cat.axisLabel.width = left - 10;
      cat.axisLabel.overflow = "truncate";
    }
    o.xAxis = horizontal ? val : cat;
    o.yAxis = horizontal ? Object.assign(cat, {inverse: true}) : val;
    o.tooltip = {trigger: "axis", valueFormatter: function (v) { return fmt(v, unit); }};
    var points = 0, two = spec.series.filter(function (s) { return s.type !== "marker"; }).length > 1;
    o.series = spec.series.map(function (s, i) {
      points += s.data.length;
      // two series: the first (reference, or the slice) is hatched, so colour is not needed
      var style = {};
      if (s.color) style.color = s.color;
      else if (two && i === 0) style.color = "#9aa4b1";
      if (two && i === 0) style.decal = HATCH;
      if (s.type === "marker") {  // e.g. the reference's value beside each bar
        return {name: s.name, type: "scatter", data: s.data.map(function (v, j) {
          return horizontal ? [v, j] : [j, v]; }), symbol: "diamond", symbolSize: 11,
          itemStyle: {color: s.color || "#000"}, z: 5};
      }
      return {name: s.name, type: "bar", data: s.data, barMaxWidth: 22, itemStyle: style};
    });
    spec.series.forEach(function (s) {
      if (!s.lower || !s.upper) return;  // an interval per bar: whiskers with caps
      o.series.push({name: s.name + " interval", type: "custom", z: 4, tooltip: {show: false},
        encode: horizontal ? {x: [1, 2], y: 0} : {x: 0, y: [1, 2]},
        data: s.lower.map(function (lo, j) { return [j, lo, s.upper[j]]; }),
        renderItem: function (params, api) {
          var j = api.value(0), lo = api.value(1), hi = api.value(2);
          var a = horizontal ? api.coord([lo, j]) : api.coord([j, lo]);
          var b = horizontal ? api.coord([hi, j]) : api.coord([j, hi]);
          var cap = 5, st = {stroke: "#222", lineWidth: 1.3};
          var ends = horizontal ? [[a[0], a[1] - cap, a[0], a[1] + cap], [b[0], b[1] - cap, b[0], b[1] + cap]]
            : [[a[0] - cap, a[1], a[0] + cap, a[1]], [b[0] - cap, b[1], b[0] + cap, b[1]]];
          return {type: "group", children: [[a[0], a[1], b[0], b[1]]].concat(ends).map(function (l) {
            return {type: "line", shape: {x1: l[0], y1: l[1], x2: l[2], y2: l[3]}, style: st}; })};
        }});
    });
    return {option: o, points: points};
  }

  // An explanation: base value, each contribution as a floating bar from where the last one
  // ended (up vermillion, down blue), then the output; one row per step, top to bottom.
  var STEP = {up: "#D55E00", down: "#0072B2", total: "#5b6472"};

  function waterfallOption(spec, width) {
    var o = base(spec), left = labelWidth(spec.categories, width);
    o.grid = {left: left, right: 24, top: 10, bottom: 8, containLabel: false};
    o.legend = {show: false};
    o.yAxis = {type: "category", data: spec.categories, inverse: true,
      axisLabel: {fontSize: 11, interval: 0, width: left - 10, overflow: "truncate"}};
    o.xAxis = {type: "value", scale: true, axisLabel: {fontSize: 11, formatter: tick}};
    o.tooltip = {trigger: "item", formatter: function (p) {
      var s = spec.steps[p.data[0]];
      if (s.kind === "total") return esc(s.name) + ": <b>" + fmt(s.to) + "</b>";
      var d = s.to - s.from;
      return esc(s.name) + (s.value !== undefined && s.value !== null ? " = " + esc(s.value) : "") +
        ": <b>" + (d >= 0 ? "+" : "") + fmt(d) + "</b> (" + fmt(s.from) + " → " + fmt(s.to) + ")";
    }};
    o.series = [{type: "custom", name: spec.title, encode: {x: [1, 2], y: 0},
      data: spec.steps.map(function (s, j) { return [j, s.from, s.to]; }),
      renderItem: function (params, api) {
        var j = api.value(0), a = api.coord([api.value(1), j]), b = api.coord([api.value(2), j]);
        var h = api.size([0, 1])[1] * 0.62, s = spec.steps[j];
        return {type: "rect", shape: {x: Math.min(a[0], b[0]), y: a[1] - h / 2,
          width: Math.max(1.5, Math.abs(b[0] - a[0])), height: h},
          style: {fill: STEP[s.kind] || STEP.total}};
      }}];
    return {option: o, points: spec.steps.length};
  }

  var BUILD = {time: timeOption, heatmap: heatOption, waterfall: waterfallOption,
    bars: function (s, w) { return barsOption(s, false, w); },
    hbars: function (s, w) { return barsOption(s, true, w); }};

  function draw(el) {
    if (el.dataset.rendered || typeof echarts === "undefined") return;
    var tag = el.nextElementSibling;
    if (!tag || !tag.classList.contains("chart-spec")) return;
    var spec = JSON.parse(tag.textContent);
    if (spec.kind === "heatmap") el.style.setProperty("--rows", spec.y.length);
    if (spec.kind === "waterfall") el.style.setProperty("--rows", spec.categories.length);
    var built = BUILD[spec.kind](spec, el.clientWidth);
    var chart = echarts.init(el, null, {renderer: "canvas"});
    chart.setOption(built.option);
    if (spec.kind === "heatmap") {
      chart.on("click", function (p) { pickFeature(spec.columns[p.data[1]]); });
    }
    el.dataset.rendered = "true";
    el.dataset.points = built.points;
    charts[spec.id] = {chart: chart, points: built.points, kind: spec.kind};
    if (window.ResizeObserver) new ResizeObserver(function () { chart.resize(); }).observe(el);
  }

  function pickFeature(column) {
    var url = new URL(window.location.href);
    url.searchParams.set("feature", column);
    var target = document.querySelector("#panel-feature .panel-body");
    if (!target || typeof htmx === "undefined") { window.location.assign(url); return; }
    var panel = url.pathname.replace(/\/$/, "") + "/panels/feature" + url.search;
    htmx.ajax("GET", panel, {target: target, swap: "innerHTML"}).then(function () {
      history.pushState({}, "", url);
      document.getElementById("panel-feature").scrollIntoView({behavior: "smooth"});
    });
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = d.toLocaleString([], {year: "numeric", month: "short",
        day: "numeric", hour: "2-digit", minute: "2-digit"});
    });
  }

  function init(root) {
    root.querySelectorAll(".chart[data-chart]").forEach(draw);
    localTimes(root);
    root.querySelectorAll("select.autosubmit").forEach(function (s) {
      if (s.dataset.bound) return;
      s.dataset.bound = "true";
      s.addEventListener("change", function () { s.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.detail.elt || document); });
  // htmx leaves 4xx/5xx answers unshown: put the server's message where people look.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    if (xhr.status < 400 || xhr.status === 401) return;
    e.detail.shouldSwap = false;
    var box = document.getElementById("toast");
    var holder = document.createElement("div");
    holder.innerHTML = xhr.responseText;
    var msg = holder.querySelector(".notice") || holder;
    if (box) { box.replaceChildren(msg); box.scrollIntoView({block: "nearest"}); }
    else e.detail.target.prepend(msg);
  });
})();
