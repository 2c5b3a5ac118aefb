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
