// The sweep picture read back as SVG: one panel per budget, every point inside its panel's plot area
// (marker included), ticks on both axes at round values, a legend entry per method, coinciding
// methods drawn with different markers, densities on the points, "simulated" in the speed axis title.
import * as assert from 'assert';
import { markerRadius, sweepSvg } from '../../lib/plot';
import type { SweepRow } from '../../lib/sweep';

function row(method: string, density: number, budget: number | null, ppl: number, tokensPerSecond: number): SweepRow {
  return { method, density, budget, memoryBytes: budget ?? 2e6, ppl, hitRate: 1, tokensPerSecond, flashBytesPerToken: 0, realizedDensity: density };
}

// No budget: dip and dip-ca give the same numbers (nothing to be cache-aware about).
const ROWS: SweepRow[] = [];
for (const budget of [null, 1.5e6, 1.8e6]) {
  const slow = budget === null ? 1 : budget / 1e6;
  ROWS.push(row('dense', 1, budget, 6.3, 1500 / slow));
  for (const d of [0.25, 0.5, 0.75, 0.9]) {
    const ppl = 6.3 / d ** 0.5, tps = 1500 / slow / d;
    ROWS.push(row('dip', d, budget, ppl, tps));
    ROWS.push(row('dip-ca', d, budget, budget === null ? ppl : ppl * 1.1, budget === null ? tps : tps * 1.3));
    ROWS.push(row('glu', d, budget, ppl * 1.02, tps * 0.9));
  }
}
const METHODS = ['dense', 'dip', 'dip-ca', 'glu'];

interface Point { method: string; x: number; y: number; shape: string; density: string; label: string | undefined }
interface Panel { budget: string; area: { x: number; y: number; w: number; h: number }; points: Point[]; xTicks: number[]; yTicks: number[] }

const num = (s: string) => (s.endsWith('k') ? 1e3 * +s.slice(0, -1) : s.endsWith('M') ? 1e6 * +s.slice(0, -1) : +s);

function parse(svg: string): { panels: Panel[]; legend: string[] } {
  const parts = svg.split('<g class="panel"').slice(1);
  const panels = parts.map((p) => {
    const a = /<rect class="plot-area" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(p)!;
    const points = [...p.matchAll(/<g class="point" data-method="([^"]+)" data-density="([^"]+)" transform="translate\(([-\d.]+),([-\d.]+)\)"><path d="([^"]+)"[^>]*\/>(?:<text[^>]*>([^<]*)<\/text>)?/g)]
      .map((m) => ({ method: m[1], density: m[2], x: +m[3], y: +m[4], shape: m[5], label: m[6] }));
    const ticks = (axis: string) => [...p.matchAll(new RegExp(`<g class="tick" data-axis="${axis}">.*?<text[^>]*>([^<]+)</text></g>`, 'g'))].map((m) => num(m[1]));
    return { budget: /^ data-budget="([^"]+)"/.exec(p)![1], area: { x: +a[1], y: +a[2], w: +a[3], h: +a[4] }, points, xTicks: ticks('x'), yTicks: ticks('y') };
  });
  const legend = [...svg.matchAll(/<g class="legend-entry" data-method="([^"]+)"/g)].map((m) => m[1]);
  return { panels, legend };
}

// A whole or half digit times a power of ten (1, 1.5, 2, 5, 10, ...; never 7.3 or 1460).
const round = (v: number) => {
  const m = 2 * v / 10 ** Math.floor(Math.log10(v) + 1e-9);
  return Math.abs(m - Math.round(m)) < 1e-6;
};

describe('63 sweep plot', () => {
  const svg = sweepSvg(ROWS, 'stories260K on a sample');
  const { panels, legend } = parse(svg);

  it('one panel per budget, each with every run of that budget', () => {
    assert.deepStrictEqual(panels.map((p) => p.budget), ['none', '1500000', '1800000']);
    for (const p of panels) assert.strictEqual(p.points.length, 1 + 3 * 4);
  });

  it('every point, its whole marker included, inside its panel\'s plot area', () => {
    assert.strictEqual(panels.reduce((a, p) => a + p.points.length, 0), ROWS.length);
    for (const p of panels)
      for (const pt of p.points) {
        const r = markerRadius(METHODS.indexOf(pt.method)) * 1.1;
        assert.ok(pt.x - r >= p.area.x && pt.x + r <= p.area.x + p.area.w && pt.y - r >= p.area.y && pt.y + r <= p.area.y + p.area.h,
          `${pt.method} ${pt.density} at (${pt.x}, ${pt.y}) outside ${JSON.stringify(p.area)} in panel ${p.budget}`);
      }
  });

  it('ticks at round values on both axes, inside the data range, with gridlines', () => {
    assert.strictEqual(panels.length, 3);
    for (const p of panels) {
      assert.ok(p.xTicks.length >= 3 && p.yTicks.length >= 3, `${p.xTicks} / ${p.yTicks}`);
      for (const t of [...p.xTicks, ...p.yTicks]) assert.ok(round(t), `tick ${t} is not round`);
    }
    assert.strictEqual((svg.match(/<g class="tick"/g) ?? []).length, panels.reduce((a, p) => a + p.xTicks.length + p.yTicks.length, 0));
    // Each panel's speed axis spans its own runs; perplexity is shared. Ticks sit near the data.
    for (const p of panels) {
      const rows = ROWS.filter((r) => String(r.budget ?? 'none') === p.budget);
      for (const [ticks, vs] of [[p.xTicks, rows.map((r) => r.tokensPerSecond)], [p.yTicks, ROWS.map((r) => r.ppl)]])
        for (const t of ticks) assert.ok(t >= Math.min(...vs) / 1.5 && t <= Math.max(...vs) * 1.5, `tick ${t} far from the data in panel ${p.budget}`);
      assert.deepStrictEqual(p.yTicks, panels[0].yTicks);
    }
  });

  it('a legend entry per method; axis titles say the speeds are simulated', () => {
    assert.deepStrictEqual(legend, METHODS);
    assert.match(svg, /simulated tokens\/s/);
    assert.match(svg, /perplexity/);
  });

  it('methods that coincide (dip and dip-ca with no budget) both show: different marker shapes and sizes', () => {
    const none = panels[0];
    for (const d of ['0.25', '0.5', '0.75', '0.9']) {
      const a = none.points.find((p) => p.method === 'dip' && p.density === d)!;
      const b = none.points.find((p) => p.method === 'dip-ca' && p.density === d)!;
      assert.deepStrictEqual([a.x, a.y], [b.x, b.y]);
      assert.notStrictEqual(a.shape, b.shape);
      assert.notStrictEqual(markerRadius(METHODS.indexOf('dip')), markerRadius(METHODS.indexOf('dip-ca')));
      assert.match(svg.split(`data-method="dip-ca" data-density="${d}"`)[1].split('</g>')[0], /<path [^>]*fill="white" fill-opacity="0.4"/);  // hollow
    }
  });

  it('density labelled on every sparse point', () => {
    const sparse = panels.flatMap((p) => p.points).filter((pt) => pt.method !== 'dense');
    assert.strictEqual(sparse.length, 3 * 3 * 4);
    for (const pt of sparse) assert.strictEqual(num(pt.label!), +pt.density);
  });

  it('draws what finished: no rows, or rows with no usable numbers, make a figure that says so', () => {
    assert.match(sweepSvg([], 't'), /no finished runs/);
    assert.match(sweepSvg([row('dip', 0.5, null, Infinity, 100)], 't'), /no finished runs/);
    const one = parse(sweepSvg([row('dense', 1, null, 7, 100)], 't'));
    assert.strictEqual(one.panels.length, 1);
    assert.ok(one.panels[0].xTicks.length >= 3 && one.panels[0].yTicks.length >= 3);
  });
});
