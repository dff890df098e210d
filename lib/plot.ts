// The sweep picture: one panel per memory budget (small multiples sharing the perplexity axis; each
// panel's speed axis spans its own runs, as budgets change speeds by orders of magnitude), perplexity
// against simulated tokens/s on log scales, with ticks at round values and gridlines, a legend, a
// marker shape per method (hollow, sizes stepping down, so methods that coincide both show) and each
// point labelled with its density. Every point sits inside its panel's plot area: the axes' ranges
// are the data's, padded. The SVG is written by hand: a few scatter panels need no plotting library.
// Structure (the tests read it): <g class="panel" data-budget> holds <rect class="plot-area">, the
// <g class="tick"> of both axes and a <g class="point" data-method transform="translate(x,y)"> per run.
import type { SweepRow } from './sweep';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
// Marker outlines of radius 1, scaled per method.
const SHAPES = [
  'M1,0A1,1 0 1,1 -1,0A1,1 0 1,1 1,0Z',           // circle
  'M-0.8,-0.8H0.8V0.8H-0.8Z',                       // square
  'M0,-1.1L0.95,0.65H-0.95Z',                        // triangle
  'M0,-1.1L1.1,0L0,1.1L-1.1,0Z',                     // diamond
  'M0,1.1L0.95,-0.65H-0.95Z',                        // triangle down
  'M-1,-0.35H-0.35V-1H0.35V-0.35H1V0.35H0.35V1H-0.35V0.35H-1Z',  // plus
];
/** Marker radius of the method at `i` (the first largest, so a smaller one drawn on it stays visible). */
export const markerRadius = (i: number): number => Math.max(3, 7 - 1.2 * (i % 5));

const PANEL_W = 380, PANEL_H = 340;
const M = { left: 62, right: 16, top: 30, bottom: 46 };  // inside a panel, around its plot area
const PER_ROW = 3;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

/** A number as a short label: 1.5k, 20k, 0.25, 7.5. */
export function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+v.toPrecision(3));
}

function fmtBytes(b: number): string {
  return b >= 2 ** 30 ? `${+(b / 2 ** 30).toPrecision(3)} GiB` : b >= 2 ** 20 ? `${+(b / 2 ** 20).toPrecision(3)} MiB` : `${+(b / 1024).toPrecision(3)} KiB`;
}

/** A log axis: [lo, hi] padded around the data, and round ticks (1-2-5 steps, else 1..9) inside it. */
export function logAxis(values: number[]): { lo: number; hi: number; ticks: number[] } {
  let l0 = Math.log10(Math.min(...values)), l1 = Math.log10(Math.max(...values));
  const pad = Math.max(0.06 * (l1 - l0), 0.04);
  l0 -= pad, l1 += pad;
  const [lo, hi] = [10 ** l0, 10 ** l1];
  const within = (mults: number[]) => {
    const out: number[] = [];
    for (let k = Math.floor(l0) - 1; k <= Math.ceil(l1); k++)
      for (const m of mults) {
        const v = +(m * 10 ** k).toPrecision(6);
        if (v >= lo && v <= hi) out.push(v);
      }
    return out;
  };
  let ticks = within([1, 2, 5]);
  if (ticks.length > 8) ticks = within([1]);
  if (ticks.length < 3) ticks = within([1, 1.5, 2, 3, 5, 7]);
  if (ticks.length < 3) ticks = within([1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9]);
  if (ticks.length < 3) ticks = within(Array.from({ length: 90 }, (_, i) => 1 + i / 10));
  if (ticks.length > 8) ticks = ticks.filter((_, i) => i % Math.ceil(ticks.length / 6) === 0);
  return { lo, hi, ticks };
}

interface Panel { budget: number | null; memory: number; rows: SweepRow[] }

export function sweepSvg(rows: SweepRow[], title: string): string {
  const ok = (r: SweepRow) => r.tokensPerSecond > 0 && Number.isFinite(r.tokensPerSecond) && r.ppl > 0 && Number.isFinite(r.ppl);
  const drawn = rows.filter(ok);
  const methods = [...new Set(rows.map((r) => r.method))];
  const panels: Panel[] = [];
  for (const r of drawn) {
    let p = panels.find((q) => q.budget === r.budget);
    if (!p) panels.push((p = { budget: r.budget, memory: r.memoryBytes, rows: [] }));
    p.rows.push(r);
  }
  const cols = Math.max(1, Math.min(PER_ROW, panels.length)), nrows = Math.max(1, Math.ceil(panels.length / PER_ROW));
  const legendH = 24, top = 34;
  const W = cols * PANEL_W + 20, H = top + nrows * PANEL_H + legendH + 26;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  if (drawn.length === 0) out.push(`<text x="${W / 2}" y="${top + 40}" text-anchor="middle" font-size="13">no finished runs to draw</text>`);
  else {
    const ay = logAxis(drawn.map((r) => r.ppl));
    const pw = PANEL_W - M.left - M.right, ph = PANEL_H - M.top - M.bottom;
    panels.forEach((p, i) => {
      const ax = logAxis(p.rows.map((r) => r.tokensPerSecond));
      const ox = 10 + (i % PER_ROW) * PANEL_W + M.left, oy = top + Math.floor(i / PER_ROW) * PANEL_H + M.top;
      const sx = (v: number) => ox + ((Math.log10(v) - Math.log10(ax.lo)) / (Math.log10(ax.hi) - Math.log10(ax.lo))) * pw;
      const sy = (v: number) => oy + ph - ((Math.log10(v) - Math.log10(ay.lo)) / (Math.log10(ay.hi) - Math.log10(ay.lo))) * ph;
      const name = p.budget === null ? `no budget (all in DRAM, ${fmtBytes(p.memory)})` : `memory budget ${fmtBytes(p.budget)}`;
      out.push(`<g class="panel" data-budget="${p.budget ?? 'none'}">`);
      out.push(`<text x="${ox + pw / 2}" y="${oy - 10}" text-anchor="middle" font-size="13" font-weight="bold">${esc(name)}</text>`);
      out.push(`<rect class="plot-area" x="${ox}" y="${oy}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#888"/>`);
      for (const t of ax.ticks) {
        const x = sx(t).toFixed(1);
        out.push(`<g class="tick" data-axis="x"><line x1="${x}" y1="${oy}" x2="${x}" y2="${oy + ph}" stroke="#e3e3e3"/>` +
          `<line x1="${x}" y1="${oy + ph}" x2="${x}" y2="${oy + ph + 4}" stroke="#888"/>` +
          `<text x="${x}" y="${oy + ph + 16}" text-anchor="middle" font-size="10">${fmt(t)}</text></g>`);
      }
      for (const t of ay.ticks) {
        const y = sy(t).toFixed(1);
        out.push(`<g class="tick" data-axis="y"><line x1="${ox}" y1="${y}" x2="${ox + pw}" y2="${y}" stroke="#e3e3e3"/>` +
          `<line x1="${ox - 4}" y1="${y}" x2="${ox}" y2="${y}" stroke="#888"/>` +
          `<text x="${ox - 6}" y="${+y + 3.5}" text-anchor="end" font-size="10">${fmt(t)}</text></g>`);
      }
      out.push(`<text x="${ox + pw / 2}" y="${oy + ph + 34}" text-anchor="middle" font-size="12">simulated tokens/s (log scale)</text>`);
      const cy = oy + ph / 2;
      out.push(`<text x="${ox - 44}" y="${cy}" text-anchor="middle" font-size="12" transform="rotate(-90 ${ox - 44} ${cy})">perplexity (log scale)</text>`);
      methods.forEach((m, mi) => {
        const pts = p.rows.filter((r) => r.method === m).sort((a, b) => a.tokensPerSecond - b.tokensPerSecond);
        const c = COLORS[mi % COLORS.length], rad = markerRadius(mi);
        if (pts.length > 1)
          out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.2" stroke-opacity="0.7" points="${pts.map((r) => `${sx(r.tokensPerSecond).toFixed(1)},${sy(r.ppl).toFixed(1)}`).join(' ')}"/>`);
        for (const r of pts) {
          const x = sx(r.tokensPerSecond), y = sy(r.ppl);
          // Density labels go to a side of the marker per method, so coinciding methods' labels do not overlap.
          const [dx, dy, anchor] = ([[rad + 3, 3.5, 'start'], [-rad - 3, 3.5, 'end'], [0, -rad - 3, 'middle'], [0, rad + 11, 'middle']] as const)[mi % 4];
          out.push(`<g class="point" data-method="${esc(m)}" data-density="${r.density}" transform="translate(${x.toFixed(1)},${y.toFixed(1)})">` +
            `<path d="${SHAPES[mi % SHAPES.length]}" transform="scale(${rad})" fill="white" fill-opacity="0.4" stroke="${c}" stroke-width="${(1.8 / rad).toFixed(3)}"/>` +
            (m === 'dense' ? '' : `<text x="${dx}" y="${dy}" text-anchor="${anchor}" font-size="9" fill="${c}">${fmt(r.density)}</text>`) +
            `<title>${esc(`${m} density ${r.density} (realized ${r.realizedDensity.toFixed(3)}), budget ${r.budget === null ? 'none' : fmtBytes(r.budget)}: ` +
              `ppl ${r.ppl.toFixed(3)}, ${r.tokensPerSecond.toFixed(1)} simulated tok/s, hit rate ${(100 * r.hitRate).toFixed(1)}%`)}</title></g>`);
        }
      });
      out.push('</g>');
    });
  }
  // Legend: a marker and the name per method, then what the numbers on the points are.
  const ly = H - legendH - 6;
  let lx = 20;
  out.push(`<g class="legend">`);
  methods.forEach((m, mi) => {
    const c = COLORS[mi % COLORS.length], rad = markerRadius(mi);
    out.push(`<g class="legend-entry" data-method="${esc(m)}"><path d="${SHAPES[mi % SHAPES.length]}" transform="translate(${lx + 7},${ly + 12}) scale(${rad})" ` +
      `fill="white" stroke="${c}" stroke-width="${(1.8 / rad).toFixed(3)}"/><text x="${lx + 18}" y="${ly + 16}" font-size="12">${esc(m)}</text></g>`);
    lx += 30 + 7.5 * m.length;
  });
  out.push(`<text x="${lx + 10}" y="${ly + 16}" font-size="11" fill="#555">numbers beside the points: MLP density</text>`);
  out.push('</g>', '</svg>');
  return out.join('\n') + '\n';
}
