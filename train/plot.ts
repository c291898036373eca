/**
 * The training loss curve as a self-contained SVG: loss per optimizer step (thin line) and the
 * average per epoch (points joined by a thick line), with labelled axes.
 * @module
 */

/** Points to draw. */
export interface LossCurve {
  /** [step, loss] per optimizer step. */
  steps: [number, number][];
  /** [step at the epoch's end, average loss] per epoch. */
  epochs: [number, number][];
  title?: string;
}

const W = 720;
const H = 420;
const M = { left: 64, right: 20, top: 40, bottom: 50 };

function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}

/** Renders the curve; non-finite losses are skipped. */
export function lossCurveSvg(curve: LossCurve): string {
  const pts = curve.steps.filter(([, y]) => Number.isFinite(y));
  const eps = curve.epochs.filter(([, y]) => Number.isFinite(y));
  const all = [...pts, ...eps];
  const xMax = Math.max(1, ...all.map(([x]) => x));
  const yMin = Math.min(0, ...all.map(([, y]) => y));
  const yMax = Math.max(1e-6, ...all.map(([, y]) => y)) * 1.05;
  const sx = (x: number) => M.left + (x / xMax) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
  const path = (p: [number, number][]) =>
    p.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${
      escapeXml(curve.title ?? "Training loss")
    }</text>`,
  );
  for (const t of niceTicks(yMin, yMax, 6)) {
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(t).toFixed(1)}" y2="${
        sy(t).toFixed(1)
      }" stroke="#e5e5e5"/>`,
      `<text x="${M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`,
    );
  }
  for (const t of niceTicks(0, xMax, 8)) {
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${H - M.bottom + 18}" text-anchor="middle">${t}</text>`);
  }
  parts.push(
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="black"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="black"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">optimizer step</text>`,
    `<text transform="translate(16 ${
      (M.top + H - M.bottom) / 2
    }) rotate(-90)" text-anchor="middle">loss</text>`,
  );
  if (pts.length) parts.push(`<path d="${path(pts)}" fill="none" stroke="#7aa6d6" stroke-width="1"/>`);
  if (eps.length) {
    parts.push(`<path d="${path(eps)}" fill="none" stroke="#d62728" stroke-width="2.5"/>`);
    for (const [x, y] of eps) {
      parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="4" fill="#d62728"/>`);
    }
  }
  parts.push(
    `<line x1="${W - 190}" x2="${W - 160}" y1="${M.top + 8}" y2="${M.top + 8}" stroke="#7aa6d6"/>`,
    `<text x="${W - 154}" y="${M.top + 12}">loss per batch</text>`,
    `<line x1="${W - 190}" x2="${W - 160}" y1="${M.top + 26}" y2="${
      M.top + 26
    }" stroke="#d62728" stroke-width="2.5"/>`,
    `<text x="${W - 154}" y="${M.top + 30}">average per epoch</text>`,
    `</svg>`,
  );
  return parts.join("\n") + "\n";
}
