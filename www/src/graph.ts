/**
 * A simple graph view: operators top to bottom in execution order; an edge that skips ahead (a
 * residual connection, a second input) is drawn as an arc on the right, in its own lane.
 */
import type { ModelSummary } from '@tinyml/optimizer';

const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function graphView(s: ModelSummary): SVGSVGElement {
  const boxW = 300, boxH = 34, gap = 16, top = 12, left = 12;
  const producer = new Map<number, number>();
  s.layers.forEach((l, i) => l.outputs.forEach((t) => producer.set(t, i)));
  const inputs = new Set(s.inputs.map((io) => io.tensor));
  const y = (i: number) => top + (i + 1) * (boxH + gap);
  const lanes: { from: number; to: number }[] = [];
  const arcs: SVGElement[] = [];
  const boxes: SVGElement[] = [];
  const laneFor = (from: number, to: number) => {
    let lane = 0;
    while (lanes.some((l) => l.to > from && l.from < to && (l as { lane?: number }).lane === lane)) lane++;
    lanes.push(Object.assign({ from, to }, { lane }));
    return lane;
  };
  boxes.push(svg('rect', { x: left, y: top, width: boxW, height: boxH, rx: 6, class: 'io' }));
  boxes.push(svg('text', { x: left + 10, y: top + 21 }, `input ${s.inputs.map((io) => `[${io.shape.join('×')}] ${io.dtype}`).join(', ')}`));
  let maxLane = -1;
  s.layers.forEach((l, i) => {
    const yy = y(i);
    const g = svg('g', { class: l.executable ? 'node' : 'node opaque' });
    g.append(svg('rect', { x: left, y: yy, width: boxW, height: boxH, rx: 6 }));
    g.append(svg('text', { x: left + 10, y: yy + 21, class: 'op' }, l.op + (l.activation ? ` + ${l.activation}` : '')));
    g.append(svg('text', { x: left + boxW - 10, y: yy + 21, 'text-anchor': 'end', class: 'shape' }, `[${l.outputShape.join('×')}]`));
    g.append(svg('title', {}, `${l.index}: ${l.name}\nparams ${l.params.toLocaleString('en-US')}, MACs ${l.macs.toLocaleString('en-US')}`));
    boxes.push(g);
    const sources = l.inputs
      .filter((t): t is number => t !== null && t !== undefined)
      .map((t) => (inputs.has(t) ? -1 : producer.get(t)))
      .filter((p): p is number => p !== undefined);
    for (const p of new Set(sources)) {
      const y0 = p < 0 ? top + boxH : y(p) + boxH;
      if (p === i - 1) {
        arcs.push(svg('line', { x1: left + boxW / 2, y1: y0, x2: left + boxW / 2, y2: yy, class: 'edge' }));
      } else {
        const lane = laneFor(p, i);
        maxLane = Math.max(maxLane, lane);
        const x = left + boxW + 14 + lane * 12;
        const path = `M ${left + boxW} ${y0 - boxH / 2} H ${x} V ${yy + boxH / 2} H ${left + boxW}`;
        arcs.push(svg('path', { d: path, class: 'edge skip', fill: 'none' }));
      }
    }
  });
  const height = y(s.layers.length - 1) + boxH + top;
  const width = left + boxW + 24 + (maxLane + 1) * 12;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `graph of ${s.layers.length} operators`, class: 'graph' });
  root.append(...arcs, ...boxes);
  return root;
}
