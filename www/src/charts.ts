/** Small horizontal bar charts in SVG: one bar per layer, labelled, with a value. */

const SVG = 'http://www.w3.org/2000/svg';

export interface Bar {
  label: string;
  value: number | null;
  /** Shown instead of the number. */
  text?: string;
  title?: string;
}

export function barChart(bars: Bar[], opts: { max: number; unit: string; ariaLabel: string; labelWidth?: number }): SVGSVGElement {
  const rowH = 20, labelW = opts.labelWidth ?? 190, barW = 320, valueW = 80;
  const width = labelW + barW + valueW;
  const height = bars.length * rowH + 8;
  const root = document.createElementNS(SVG, 'svg');
  root.setAttribute('width', String(width));
  root.setAttribute('height', String(height));
  root.setAttribute('viewBox', `0 0 ${width} ${height}`);
  root.setAttribute('role', 'img');
  root.setAttribute('aria-label', opts.ariaLabel);
  root.setAttribute('class', 'chart');
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    root.append(e);
    return e;
  };
  bars.forEach((b, i) => {
    const y = 4 + i * rowH;
    add('text', { x: labelW - 8, y: y + 14, 'text-anchor': 'end', class: 'label' }, b.label.length > 30 ? '…' + b.label.slice(-29) : b.label);
    add('rect', { x: labelW, y: y + 3, width: barW, height: rowH - 6, class: 'track' });
    if (b.value !== null && Number.isFinite(b.value)) {
      const w = Math.max(0, Math.min(1, b.value / opts.max)) * barW;
      const r = add('rect', { x: labelW, y: y + 3, width: w.toFixed(1), height: rowH - 6, class: 'bar' });
      if (b.title) {
        const t = document.createElementNS(SVG, 'title');
        t.textContent = b.title;
        r.append(t);
      }
    }
    add('text', { x: labelW + barW + 8, y: y + 14, class: 'value' }, b.text ?? (b.value === null ? '–' : `${b.value.toFixed(1)}${opts.unit}`));
  });
  return root;
}

/** A line chart of training loss: per step, and per epoch on held-out data. */
export function lossChart(
  series: { name: string; cls: string; points: [number, number][] }[],
  opts: { steps: number; ariaLabel: string },
): SVGSVGElement {
  const width = 560, height = 180, left = 44, bottom = 22, top = 8;
  const root = document.createElementNS(SVG, 'svg');
  root.setAttribute('width', String(width));
  root.setAttribute('height', String(height));
  root.setAttribute('viewBox', `0 0 ${width} ${height}`);
  root.setAttribute('role', 'img');
  root.setAttribute('aria-label', opts.ariaLabel);
  root.setAttribute('class', 'chart loss');
  const all = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const max = Math.max(1e-6, ...all);
  const x = (step: number) => left + (step / Math.max(opts.steps, 1)) * (width - left - 8);
  const y = (v: number) => top + (1 - v / max) * (height - top - bottom);
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    root.append(e);
    return e;
  };
  add('line', { x1: left, y1: y(0), x2: width - 8, y2: y(0), class: 'axis' });
  add('text', { x: left - 6, y: y(max) + 10, 'text-anchor': 'end', class: 'label' }, max.toPrecision(2));
  add('text', { x: left - 6, y: y(0), 'text-anchor': 'end', class: 'label' }, '0');
  add('text', { x: width - 8, y: height - 4, 'text-anchor': 'end', class: 'label' }, `step ${opts.steps}`);
  series.forEach((s, i) => {
    if (s.points.length) {
      add('polyline', { points: s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' '), class: s.cls });
    }
    add('text', { x: left + 8 + i * 160, y: top + 12, class: `legend ${s.cls}` }, s.name);
  });
  return root;
}
