import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goQuote } from './go-quote.ts';

test("goQuote escapes as Go's strconv.Quote does", () => {
  assert.equal(goQuote('plain'), '"plain"');
  assert.equal(goQuote('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
  assert.equal(goQuote('tab\there\n'), '"tab\\there\\n"');
  assert.equal(goQuote('\x7f\x00\x1b'), '"\\x7f\\x00\\x1b"');
  assert.equal(goQuote('\u2028'), '"\\u2028"');
  assert.equal(goQuote('日本 ü'), '"日本 ü"');
  assert.equal(goQuote('\u{e0001}'), '"\\U000e0001"');
  // Format characters are not printable: a bidi override never reaches a message as itself.
  assert.equal(goQuote('abc\u202edef'), '"abc\\u202edef"');
  assert.equal(goQuote('\u200b\u00ad\ufeff'), '"\\u200b\\u00ad\\ufeff"');
  assert.equal(goQuote('\ud800'), '"\\ufffd"');
});
