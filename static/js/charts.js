/* Draws the dashboard's and the run page's charts with Chart.js from the
   JSON the server embeds (json_script). No data is fetched. */
(function () {
  "use strict";

  function readData() {
    var node = document.getElementById("chart-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  var axisFont = { size: 13 };
  // The page's own ink and rule colours (site.css), so the charts match the tables.
  function cssColour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  var gridColour = null;

  function axis(title) {
    return { title: { display: true, text: title, font: axisFont }, grid: { color: gridColour } };
  }

  // One dataset, no legend; the tooltip says what the hovered value means.
  function plainPlugins(label) {
    return { legend: { display: false }, tooltip: { callbacks: { label: label } } };
  }

  function lineByK(canvas, data, values, label, colour, digits) {
    var chosen = data.k_values.indexOf(data.chosen_k);
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: data.k_values,
        datasets: [{
          label: label,
          data: values,
          borderColor: colour,
          backgroundColor: colour,
          pointRadius: data.k_values.map(function (_k, i) { return i === chosen ? 8 : 4; }),
          pointBackgroundColor: data.k_values.map(function (_k, i) { return i === chosen ? data.lines.chosen : colour; }),
          pointStyle: data.k_values.map(function (_k, i) { return i === chosen ? "rectRot" : "circle"; }),
          tension: 0.15
        }]
      },
      options: {
        plugins: plainPlugins(function (item) {
          var text = label + ": " + Number(item.raw).toFixed(digits);
          return item.dataIndex === chosen ? text + " (chosen)" : text;
        }),
        scales: { x: axis("Number of segments (K)"), y: axis(label) }
      }
    });
  }

  function sizes(canvas, data) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.segments.map(function (s) { return s.name; }),
        datasets: [{
          label: "Customers",
          data: data.segments.map(function (s) { return s.size; }),
          backgroundColor: data.segments.map(function (s) { return s.hex; })
        }]
      },
      options: {
        indexAxis: "y",
        plugins: plainPlugins(function (item) {
          var s = data.segments[item.dataIndex];
          return s.size.toLocaleString() + " customers (" + (s.share * 100).toFixed(1) + " %)";
        }),
        scales: { x: axis("Customers"), y: { grid: { display: false } } }
      }
    });
  }

  function projection(canvas, data) {
    var p = data.projection;
    if (!p || !p.x) { return null; }
    var datasets = data.segments.map(function (s) {
      var points = [];
      for (var i = 0; i < p.x.length; i++) {
        if (p.cluster[i] === s.index) { points.push({ x: p.x[i], y: p.y[i] }); }
      }
      // Each segment's own colour and marker shape (clustering/palette.py), as on its card.
      return {
        label: s.name,
        data: points,
        backgroundColor: s.hex + "99",
        borderColor: s.hex,
        borderWidth: 0.5,
        pointStyle: s.shape,
        pointRadius: 3
      };
    });
    return new Chart(canvas, {
      type: "scatter",
      data: { datasets: datasets },
      options: {
        plugins: { legend: { position: "bottom", labels: { usePointStyle: true } } },
        scales: { x: axis("Direction 1 (most spread)"), y: axis("Direction 2") }
      }
    });
  }

  function draw() {
    var data = readData();
    if (!data || typeof Chart === "undefined") { return; }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    // Boxes set the height (CSS); screenshots and tests want the final frame at once.
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.animation = false;
    Chart.defaults.color = cssColour("--ink");
    gridColour = cssColour("--line");
    var elbow = document.getElementById("chart-elbow");
    var silhouette = document.getElementById("chart-silhouette");
    var sizeCanvas = document.getElementById("chart-sizes");
    var map = document.getElementById("chart-projection");
    if (elbow) { lineByK(elbow, data, data.inertia, "Inertia", data.lines.inertia, 1); }
    if (silhouette) { lineByK(silhouette, data, data.silhouette, "Silhouette", data.lines.silhouette, 3); }
    if (sizeCanvas) { sizes(sizeCanvas, data); }
    if (map) { projection(map, data); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
