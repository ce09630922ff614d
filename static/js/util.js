/* Small helpers every part of the page shares: element lookup, number formatting, copying and
 * downloading. Requests to the server and their error texts live in api.js. */

export const $ = (id) => document.getElementById(id);

/** A probability as a percentage with one decimal; never "100.0%" or "0.0%", which no model means. */
export function percent(p) {
  const v = Math.max(0, Math.min(1, Number(p) || 0)) * 100;
  if (v < 0.05) return "<0.1%";
  if (v >= 99.95) return ">99.9%";
  return `${v.toFixed(1)}%`;
}

export function quoteList(labels) {
  const q = labels.map((l) => `“${l}”`);
  return q.length > 1 ? `${q.slice(0, -1).join(", ")} and ${q[q.length - 1]}` : q.join("");
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Put ``text`` on the clipboard; false when the browser refuses (the caller offers selection). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    return false;
  }
}

/** Offer ``content`` as a file download named ``name``. */
export function download(name, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** One CSV field, quoted when it holds a comma, quote or line break. */
export function csvField(value) {
  const s = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}
