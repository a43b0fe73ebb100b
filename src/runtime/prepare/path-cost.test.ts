import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PathCost, PATH_BLOCK, PATH_IF, PATH_LOOP } from './path-cost.ts';

test('a loop over a switch is charged its costliest case, not all of them', () => {
  // loop { block { block { block { br_table 0 1 2 } case0 (10) br 2 } case1 (20) br 1 } case2 (30) } br 0 }
  const p = new PathCost();
  p.add(5); // before the loop
  const loop = p.enter(PATH_LOOP);
  p.add(1);
  p.enter(PATH_BLOCK); // $exit
  p.enter(PATH_BLOCK); // case 2 starts after this one
  p.enter(PATH_BLOCK); // case 1
  p.enter(PATH_BLOCK); // case 0
  p.add(2);
  for (const l of [0, 1, 2]) p.branch(l);
  p.stop();
  p.end();
  p.add(10); // case 0
  p.branch(2); // to $exit
  p.stop();
  p.end();
  p.add(20); // case 1
  p.branch(1);
  p.stop();
  p.end();
  p.add(30); // case 2, falls to $exit
  p.end();
  p.add(3);
  p.branch(0); // back edge
  p.stop();
  p.end(); // loop
  p.add(4); // after the loop
  p.end(); // function
  assert.equal(p.max[loop], 1 + 2 + 30 + 3);
  assert.equal(p.max[0], 5 + 4);
});

test('an if without else may skip its arm; one with else takes the costlier', () => {
  const p = new PathCost();
  p.add(1);
  p.enter(PATH_IF);
  p.add(100);
  p.end();
  p.enter(PATH_IF);
  p.add(7);
  p.else();
  p.add(9);
  p.end();
  p.end();
  assert.equal(p.max[0], 1 + 100 + 9);
});

test('a path ends where it leaves its loop: a branch out, a return, a continue of the outer loop', () => {
  const p = new PathCost();
  const outer = p.enter(PATH_LOOP);
  p.add(2);
  const inner = p.enter(PATH_LOOP);
  p.add(50);
  p.branch(1); // continue the outer loop: the outer path so far (2), the inner one (50)
  p.add(5);
  p.leave(); // return: inner 55, outer still 2, function 0
  p.end(); // inner loop (unreachable fall-through)
  p.add(3);
  p.branch(0);
  p.stop();
  p.end();
  p.end();
  assert.equal(p.max[inner], 55);
  assert.equal(p.max[outer], 5);
  assert.equal(p.max[0], 0);
});
