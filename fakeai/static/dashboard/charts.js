/* Live time-series charts on uPlot (vendor/uPlot.iife.min.js).
 *
 * A LiveChart keeps a rolling window of points: one shared time axis and one array per
 * series, keyed by label. push(t, {label: value}) appends a point; a label seen for the
 * first time becomes a new series (its past filled with gaps), a label that stops coming
 * gets gaps. When the set of labels changes (workers or GPUs added or removed) the plot is
 * rebuilt; otherwise its data is replaced, at most once per animation frame.
 */
"use strict";

const PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf",
                 "#ff9bce", "#e3b341", "#7ee787", "#a5d6ff", "#ffa657", "#d2a8ff"];

class LiveChart {
  constructor(figure, { window = 300, unit = "", min = 0, max = null } = {}) {
    this.figure = figure;
    this.unit = unit;
    this.min = min;
    this.max = max;
    this.window = window;          // points kept
    this.times = [];
    this.series = new Map();       // label -> values
    this.plot = null;
    this.pending = false;
    this.box = document.createElement("div");
    this.box.className = "plot";
    figure.appendChild(this.box);
    new ResizeObserver(() => this._resize()).observe(this.box);
  }

  /** The values of one series (for tests and tiles). */
  values(label) {
    return this.series.get(label) || [];
  }

  labels() {
    return [...this.series.keys()];
  }

  clear() {
    this.times = [];
    this.series = new Map();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  push(t, point) {
    let rebuild = false;
    for (const label of Object.keys(point)) {
      if (!this.series.has(label)) {
        this.series.set(label, new Array(this.times.length).fill(null));
        rebuild = true;
      }
    }
    this.times.push(t);
    for (const [label, values] of this.series) {
      const v = point[label];
      values.push(v === undefined || v === null || Number.isNaN(v) ? null : v);
    }
    if (this.times.length > this.window) {
      this.times.shift();
      for (const values of this.series.values()) values.shift();
    }
    // a series with no value left in the window goes away (a removed worker or GPU)
    for (const [label, values] of this.series) {
      if (!(label in point) && values.every((v) => v === null)) {
        this.series.delete(label);
        rebuild = true;
      }
    }
    if (rebuild) this._build();
    else this._schedule();
  }

  _data() {
    return [this.times, ...this.series.values()];
  }

  _size() {
    const r = this.box.getBoundingClientRect();
    return { width: Math.max(200, Math.floor(r.width)), height: Math.max(120, Math.floor(r.height) - 28) };
  }

  _build() {
    if (this.plot) this.plot.destroy();
    const unit = this.unit;
    const fmt = (u, v) => (v === null || v === undefined ? "–" : formatNumber(v) + unit);
    const series = [{ value: (u, v) => (v ? new Date(v * 1000).toLocaleTimeString() : "–") }];
    let i = 0;
    for (const label of this.series.keys()) {
      const color = PALETTE[i++ % PALETTE.length];
      series.push({ label, stroke: color, width: 1.5, value: fmt, spanGaps: false, points: { show: false } });
    }
    const yRange = (u, lo, hi) => [Math.min(this.min ?? lo, lo ?? 0), this.max ?? (hi > 0 ? hi * 1.1 : 1)];
    const axis = { stroke: "#8a94a3", grid: { stroke: "#262c35", width: 1 }, ticks: { stroke: "#262c35" } };
    const values = (u, ticks) => ticks.map((v) => formatNumber(v));
    const clock = (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false }));
    this.plot = new uPlot({
      ...this._size(),
      series,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: { x: { time: true }, y: { range: yRange } },
      axes: [{ ...axis, space: 70, values: clock }, { ...axis, size: 48, values }],
    }, this._data(), this.box);
  }

  _schedule() {
    if (this.pending || !this.plot) {
      if (!this.plot) this._build();
      return;
    }
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData(this._data());
    });
  }

  _resize() {
    if (this.plot) this.plot.setSize(this._size());
  }
}

function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));  // 3 significant digits, no trailing zeros
}

window.LiveChart = LiveChart;
window.formatNumber = formatNumber;
