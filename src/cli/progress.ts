// A progress bar on standard error for uploads and downloads of large
// modules and snapshots: shown only when stderr is a terminal and the
// transfer is big enough to be worth watching.

import { Transform, type TransformCallback } from 'node:stream';

const THRESHOLD = 1024 * 1024;
const WIDTH = 30;

function size(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Counts bytes passing through and redraws the bar at most every 100 ms. */
export class Progress extends Transform {
  private done = 0;
  private lastDraw = 0;
  private readonly total: number;
  private readonly label: string;
  private readonly visible: boolean;

  /** Whether a transfer of this size gets a bar. */
  static shows(total: number, stream: NodeJS.WriteStream = process.stderr): boolean {
    return stream.isTTY === true && total >= THRESHOLD;
  }

  constructor(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
    super();
    this.label = label;
    this.total = total;
    this.visible = Progress.shows(total, stream);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.done += chunk.length;
    const now = Date.now();
    if (this.visible && now - this.lastDraw >= 100) {
      this.lastDraw = now;
      this.draw();
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.visible) {
      this.draw();
      process.stderr.write('\n');
    }
    callback();
  }

  private draw(): void {
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(fraction * WIDTH);
    const bar = '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
    process.stderr.write(`\r${this.label} [${bar}] ${String(Math.round(fraction * 100)).padStart(3)}% ${size(this.done)}/${size(this.total)}`);
  }
}
