/** Tiny DOM helpers. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== '') e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export const fmt = (n: number) => n.toLocaleString('en-US');
export const shape = (s: number[]) => `[${s.join(', ')}]`;
