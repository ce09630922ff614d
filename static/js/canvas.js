/* The drawing surface: pointer input, smoothed strokes, undo, and two shapes. A glyph is drawn on
 * a square; lines of text on a wide surface with room for three lines that grows a line when the
 * writing reaches its last one. Each shape keeps its own strokes and pen, so switching the task
 * never wipes a drawing. The browser only collects ink: the server prepares every image. */

const GLYPH = { width: 280, height: 280, pen: 18 }; // stroke coordinates live in 0..280
const LINE_ROW = 150; // one line of text, in canvas units
const LINE_ROWS = 3; // lines the surface offers to begin with
const LINE_MAX_ROWS = 8; // it grows up to this many
const LINE_PEN = 8; // a fine pen: thick strokes close the loops of small cursive letters
const INK = "#000000";
const PAPER = "#ffffff";

export class Surface {
  constructor(canvas, { onStroke, onChange }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onStroke = onStroke; // a stroke was added: read the drawing
    this.onChange = onChange; // strokes changed (undo, clear, shape): update buttons
    this.shapes = {
      glyph: { ...GLYPH, strokes: [] },
      line: { width: 1200, height: LINE_ROW * LINE_ROWS, pen: LINE_PEN, strokes: [] },
    };
    this.shape = this.shapes.glyph;
    this.current = null;
    this.pointer = null;
    this.scale = 1;
    this.queued = false;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      canvas.addEventListener(type, (e) => this.up(e));
    }
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    window.addEventListener("resize", () => this.setup());
  }

  get strokes() {
    return this.shape.strokes;
  }

  get wide() {
    return this.shape === this.shapes.line;
  }

  get pen() {
    return this.shape.pen;
  }

  set pen(width) {
    this.shape.pen = width;
  }

  /** Show the glyph square or the wide line surface; true when the shape changed. */
  use(wide) {
    const shape = wide ? this.shapes.line : this.shapes.glyph;
    if (shape === this.shape) return false;
    this.shape = shape;
    this.current = null;
    this.setup();
    this.onChange();
    return true;
  }

  setup() {
    const line = this.shapes.line;
    this.canvas.classList.toggle("wide", this.wide);
    this.canvas.parentElement.classList.toggle("wide", this.wide);
    if (this.wide && !line.strokes.length) {
      // a phone's narrow surface gets wider lines in canvas units, so a line is still a finger tall
      const shown = this.canvas.parentElement.getBoundingClientRect().width || 1200;
      line.width = shown < 600 ? 600 : 1200;
      line.height = LINE_ROW * LINE_ROWS;
    }
    const { width: W, height: H } = this.shape;
    const dpr = Math.min(Math.max(window.devicePixelRatio || 1, 1), 3);
    const width = Math.round(W * dpr);
    const height = Math.round(H * dpr);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.scale = width / W;
    this.canvas.style.aspectRatio = `${W} / ${H}`;
    this.canvas.dataset.width = String(W);
    this.canvas.dataset.height = String(H);
    this.render();
  }

  render() {
    this.queued = false;
    this.paint(this.ctx, this.scale);
  }

  /** Paper and every stroke on ``ctx``, ``scale`` device pixels per canvas unit. */
  paint(ctx, scale) {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    for (const stroke of this.strokes) this.draw(stroke, ctx);
    if (this.current) this.draw(this.current, ctx);
  }

  queue() {
    if (!this.queued) {
      this.queued = true;
      requestAnimationFrame(() => this.render());
    }
  }

  // A stroke is drawn as quadratic curves through the midpoints of its samples, which smooths
  // the corners between pointer events without lagging behind the pen.
  draw(stroke, ctx = this.ctx) {
    const pts = stroke.points;
    if (!pts.length) return;
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = stroke.width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (pts.length === 1) {
      ctx.beginPath();
      ctx.arc(pts[0][0], pts[0][1], stroke.width / 2, 0, Math.PI * 2);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (let i = 1; i < pts.length - 1; i++) {
      const mx = (pts[i][0] + pts[i + 1][0]) / 2;
      const my = (pts[i][1] + pts[i + 1][1]) / 2;
      ctx.quadraticCurveTo(pts[i][0], pts[i][1], mx, my);
    }
    const last = pts[pts.length - 1];
    ctx.lineTo(last[0], last[1]);
    ctx.stroke();
  }

  // Pointer position in canvas units, correct however CSS scales the canvas.
  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * this.shape.width;
    const y = ((event.clientY - rect.top) / rect.height) * this.shape.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  add(event) {
    const p = this.point(event);
    const pts = this.current.points;
    const prev = pts[pts.length - 1];
    if (!prev || Math.abs(prev[0] - p[0]) + Math.abs(prev[1] - p[1]) >= 0.5) pts.push(p);
  }

  down(event) {
    if (this.pointer !== null) return;
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    this.pointer = event.pointerId;
    try {
      this.canvas.setPointerCapture(event.pointerId);
    } catch (_) {
      /* the pointer may already be gone */
    }
    this.current = { width: this.pen, points: [] };
    this.add(event);
    this.queue();
  }

  move(event) {
    if (event.pointerId !== this.pointer || !this.current) return;
    event.preventDefault();
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) this.add(e);
    this.queue();
  }

  up(event) {
    if (event.pointerId !== this.pointer) return;
    this.pointer = null;
    if (!this.current) return;
    if (event.type === "pointerup") this.add(event);
    const stroke = this.current;
    this.strokes.push(stroke);
    this.current = null;
    this.growFor(stroke);
    this.render();
    this.onChange();
    this.onStroke();
  }

  /** The line surface grows a line when a stroke reaches into its last one. */
  growFor(stroke) {
    if (!this.wide) return;
    const line = this.shape;
    const lowest = Math.max(...stroke.points.map((p) => p[1]));
    if (lowest > line.height - LINE_ROW * 0.6 && line.height < LINE_ROW * LINE_MAX_ROWS) {
      line.height += LINE_ROW;
      this.setup();
    }
  }

  undo() {
    if (!this.strokes.length) return false;
    this.strokes.pop();
    this.render();
    this.onChange();
    return true;
  }

  clear() {
    this.shape.strokes = [];
    this.current = null;
    if (this.wide) this.setup();
    else this.render();
    this.onChange();
  }

  /** The drawing as a PNG data: URL at its own size in canvas units (280x280 for a glyph),
   * whatever the screen's pixel ratio: the strokes are painted again at one pixel per unit. On a
   * 2x or 3x screen the canvas holds 4 or 9 times the pixels, which the server only shrinks back
   * (preparing a glyph took 7.6 and 20 ms instead of 2), and every screen now sends the same
   * picture of the same strokes. */
  dataUrl() {
    if (this.scale === 1) return this.canvas.toDataURL("image/png");
    const out = document.createElement("canvas");
    out.width = this.shape.width;
    out.height = this.shape.height;
    this.paint(out.getContext("2d"), 1);
    return out.toDataURL("image/png");
  }

  /** A small copy of the drawing for the result and the history (longer side ``side`` pixels). */
  thumbnail(side = 96) {
    return shrinkTo(this.canvas, side, "image/png");
  }
}

/** ``source`` (a canvas, image or bitmap) drawn on white at most ``side`` pixels long, as a data URL. */
export function shrinkTo(source, side, type = "image/jpeg") {
  const w = source.width;
  const h = source.height;
  const k = Math.min(1, side / Math.max(w, h));
  const thumb = document.createElement("canvas");
  thumb.width = Math.max(1, Math.round(w * k));
  thumb.height = Math.max(1, Math.round(h * k));
  const ctx = thumb.getContext("2d");
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, thumb.width, thumb.height);
  ctx.drawImage(source, 0, 0, thumb.width, thumb.height);
  return thumb.toDataURL(type, 0.8);
}
