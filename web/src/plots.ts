// The two pool plots, drawn with uPlot (canvas): the quantile curve (value
// against percentile) and the histogram (bars). Each keeps its uPlot instance
// and only swaps data on updates, which is what makes live redraws cheap.

import uPlot from 'uplot';

const WIDTH = 560;
const HEIGHT = 260;
const LINE = '#2563eb';
const BAR = '#0d9488';

function sized(): { width: number; height: number } {
  return { width: WIDTH, height: HEIGHT };
}

export class QuantilePlot {
  private readonly plot: uPlot;

  constructor(target: HTMLElement) {
    const opts: uPlot.Options = {
      ...sized(),
      title: 'Quantile curve',
      scales: { x: { time: false, range: [0, 100] } },
      axes: [{ label: 'percentile' }, { label: 'value', size: 70 }],
      series: [{ label: 'percentile' }, { label: 'value', stroke: LINE, width: 2, points: { show: false } }],
      legend: { show: true },
    };
    this.plot = new uPlot(opts, [[], []], target);
  }

  set(percentiles: number[], values: number[]): void {
    this.plot.setData([percentiles, values]);
  }
}

export class HistogramPlot {
  private readonly plot: uPlot;

  constructor(target: HTMLElement) {
    const bars = uPlot.paths.bars!({ size: [1, Infinity], gap: 1, align: 1 });
    const opts: uPlot.Options = {
      ...sized(),
      title: 'Histogram',
      scales: { x: { time: false } },
      axes: [{ label: 'value' }, { label: 'count', size: 70 }],
      series: [{ label: 'bin start' }, { label: 'count', fill: BAR, stroke: BAR, paths: bars, points: { show: false } }],
    };
    this.plot = new uPlot(opts, [[], []], target);
  }

  set(lo: number[], counts: number[]): void {
    this.plot.setData([lo, counts]);
  }
}

/** A small line of one quantity over time (the server page's requests/s). */
export class RatePlot {
  private readonly plot: uPlot;
  private readonly times: number[] = [];
  private readonly values: number[] = [];

  constructor(target: HTMLElement, label: string) {
    const opts: uPlot.Options = {
      width: WIDTH,
      height: 200,
      title: label,
      axes: [{}, { size: 70 }],
      series: [{}, { label, stroke: LINE, width: 2 }],
    };
    this.plot = new uPlot(opts, [[], []], target);
  }

  push(seconds: number, value: number): void {
    this.times.push(seconds);
    this.values.push(value);
    if (this.times.length > 120) {
      this.times.shift();
      this.values.shift();
    }
    this.plot.setData([this.times.slice(), this.values.slice()]);
  }
}
