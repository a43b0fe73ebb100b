// What a fuel check charges: the costliest path from it to the next check,
// not all the code it guards. A check sits at a function's entry and at each
// loop's header; the code it guards (its region) is everything up to the
// next check, nested loops excepted. A loop whose body is a `switch` of a
// hundred cases runs one case per iteration: charging all of them made
// SQLite's interpreter loop spend its whole grant (a million units) in one
// iteration and call the tick every few microseconds.
//
// Structured control flow makes this one forward pass: the costliest way to
// a point is the larger of falling through to it and branching to it, and
// a branch can only go forward (to a block's end) or back to a loop's header
// (where a path of that loop's region ends).

/** A frame's kind, as the pass needs it. */
export const PATH_BLOCK = 0;
export const PATH_IF = 1;
export const PATH_LOOP = 2;

interface PathFrame {
  kind: number;
  /** The region whose code the frame holds (a loop's own). */
  region: number;
  /** Costliest path reaching the frame's end by a branch. */
  atEnd: number;
  /** Cost at an `if` (its false path). */
  atIf: number;
  hasElse: boolean;
}

const NONE = -Infinity;

export class PathCost {
  /** Per region (0: the function's entry): units its check charges. */
  readonly max: number[] = [0];
  /** Per region: the costliest path to the current point (NONE when unreachable). */
  private readonly cur: number[] = [0];
  private readonly frames: PathFrame[] = [{ kind: PATH_BLOCK, region: 0, atEnd: NONE, atIf: NONE, hasElse: false }];
  /** The innermost frame's region (add runs once per instruction). */
  private region = 0;

  private get top(): PathFrame {
    return this.frames[this.frames.length - 1];
  }

  /** Work at the current point. */
  add(n: number): void {
    this.cur[this.region] += n;
  }

  /** Open a block, if (its condition taken) or loop; a loop opens a new region, whose number it returns. */
  enter(kind: number): number {
    const parent = this.top.region;
    let region = parent;
    if (kind === PATH_LOOP) {
      region = this.max.length;
      this.max.push(0);
      this.cur.push(0);
    }
    this.frames.push({ kind, region, atEnd: NONE, atIf: this.cur[parent], hasElse: false });
    this.region = region;
    return region;
  }

  /** `else`: the then arm's path goes to the end; the else arm starts from the `if`. */
  else(): void {
    const f = this.top;
    f.atEnd = Math.max(f.atEnd, this.cur[f.region]);
    this.cur[f.region] = f.atIf;
    f.hasElse = true;
  }

  /** `end` of a frame (the function's own end included). */
  end(): void {
    const f = this.frames.pop()!;
    if (this.frames.length > 0) this.region = this.top.region;
    if (f.kind === PATH_LOOP) {
      // Falling out of a loop ends its region's path; the enclosing region goes on from where it entered.
      this.record(f.region);
      return;
    }
    const c = Math.max(this.cur[f.region], f.atEnd, f.hasElse || f.kind !== PATH_IF ? NONE : f.atIf);
    this.cur[f.region] = c;
    if (this.frames.length === 0) this.record(0);
  }

  /** A branch to `label` (taken or not): paths of the loops it leaves end, and it reaches its target. */
  branch(label: number): void {
    const n = this.frames.length;
    const target = this.frames[n - 1 - label];
    for (let k = n - 1; k > n - 1 - label; k--) if (this.frames[k].kind === PATH_LOOP) this.record(this.frames[k].region);
    if (target.kind === PATH_LOOP) this.record(target.region);
    else target.atEnd = Math.max(target.atEnd, this.cur[target.region]);
  }

  /** `return` or `unreachable`: every open region's path ends here. */
  leave(): void {
    for (const f of this.frames) this.record(f.region);
    this.stop();
  }

  /** After an unconditional branch: nothing falls through. */
  stop(): void {
    this.cur[this.region] = NONE;
  }

  private record(region: number): void {
    this.max[region] = Math.max(this.max[region], this.cur[region]);
  }
}
