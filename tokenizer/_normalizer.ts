/**
 * Hugging Face's BertNormalizer and BertPreTokenizer, character for character.
 *
 * HF normalizes in this order: clean_text (drop NUL, U+FFFD, control and format characters; map
 * whitespace to " "), handle_chinese_chars (pad CJK ideographs with spaces), strip_accents (NFD,
 * then drop nonspacing marks), lowercase (per character, so no Greek final-sigma rule). The
 * pre-tokenizer then splits on whitespace and isolates every punctuation character. The character
 * classes come from `_unicode_tables.ts`, probed from HF itself, because HF's category tables are
 * older than the JavaScript engine's.
 * @module
 */

import {
  CJK,
  CLEAN_SPACE,
  LOWERCASE_EXCEPTIONS,
  NFD_EXCEPTIONS,
  NONSPACING_MARKS,
  PUNCTUATION,
  REMOVED,
  SPLIT_SPACE,
} from "./_unicode_tables.ts";

/** The BertNormalizer switches, as in tokenizer.json (`strip_accents: null` resolved to `lowercase`). */
export interface BertNormalizerOptions {
  cleanText: boolean;
  handleChineseChars: boolean;
  stripAccents: boolean;
  lowercase: boolean;
}

// One byte of class flags per code point (1.1 MB, built once).
const IS_REMOVED = 1;
const IS_CLEAN_SPACE = 2;
const IS_SPLIT_SPACE = 4;
const IS_PUNCTUATION = 8;
const IS_MARK = 16;
const IS_CJK = 32;
const IS_NFD_EXCEPTION = 64;
const IS_LOWERCASE_EXCEPTION = 128;

const FLAGS = new Uint8Array(0x110000);

function mark(ranges: string, flag: number): void {
  for (const range of ranges.split(" ")) {
    if (range === "") continue;
    const [a, b = a] = range.split("-");
    const lo = parseInt(a, 16);
    const hi = parseInt(b, 16);
    for (let cp = lo; cp <= hi; cp++) FLAGS[cp] |= flag;
  }
}

mark(REMOVED, IS_REMOVED);
mark(CLEAN_SPACE, IS_CLEAN_SPACE);
mark(SPLIT_SPACE, IS_SPLIT_SPACE);
mark(PUNCTUATION, IS_PUNCTUATION);
mark(NONSPACING_MARKS, IS_MARK);
mark(CJK, IS_CJK);
const NFD_MAP = new Map<number, string>(NFD_EXCEPTIONS);
const LOWER_MAP = new Map<number, string>(LOWERCASE_EXCEPTIONS);
for (const cp of NFD_MAP.keys()) FLAGS[cp] |= IS_NFD_EXCEPTION;
for (const cp of LOWER_MAP.keys()) FLAGS[cp] |= IS_LOWERCASE_EXCEPTION;

/** Code point at `i` of `s`; a lone surrogate reads as -1 (it reaches HF as U+FFFD). */
function codePointAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c > 0xdfff) return c;
  if (c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
  }
  return -1;
}

/** True when any code point of `s` has `flag`. */
function anyFlag(s: string, flag: number): boolean {
  for (let i = 0; i < s.length; i++) {
    const cp = codePointAt(s, i);
    if (cp > 0xffff) i++;
    if (cp >= 0 && (FLAGS[cp] & flag) !== 0) return true;
  }
  return false;
}

/** clean_text and handle_chinese_chars in one pass; lone surrogates become U+FFFD first. */
function cleanAndPad(s: string, clean: boolean, chinese: boolean): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) continue; // printable ASCII is never touched
    const cp = codePointAt(s, i);
    const width = cp > 0xffff ? 2 : 1;
    const flags = cp < 0 ? IS_REMOVED : FLAGS[cp];
    let replacement: string | null = null;
    if (cp < 0) replacement = clean ? "" : "\ufffd";
    else if (clean && (flags & IS_REMOVED) !== 0) replacement = "";
    else if (clean && (flags & IS_CLEAN_SPACE) !== 0) replacement = " ";
    else if (chinese && (flags & IS_CJK) !== 0) replacement = ` ${s.slice(i, i + width)} `;
    if (replacement !== null) {
      out += s.slice(start, i) + replacement;
      start = i + width;
    }
    i += width - 1;
  }
  return start === 0 ? s : out + s.slice(start);
}

/** HF's NFD: the runtime's, except for the few characters whose decomposition HF does not know yet. */
function nfd(s: string): string {
  if (!anyFlag(s, IS_NFD_EXCEPTION)) return s.normalize("NFD");
  let out = "";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const cp = codePointAt(s, i);
    const width = cp > 0xffff ? 2 : 1;
    if (cp >= 0 && (FLAGS[cp] & IS_NFD_EXCEPTION) !== 0) {
      // HF treats every exception as a starter (combining class 0), so canonical reordering never
      // crosses it and normalizing the text on either side separately is exact.
      out += s.slice(start, i).normalize("NFD") + NFD_MAP.get(cp)!;
      start = i + width;
    }
    i += width - 1;
  }
  return out + s.slice(start).normalize("NFD");
}

/** strip_accents: NFD, then drop nonspacing marks. */
function stripAccents(s: string): string {
  const d = nfd(s);
  let out = "";
  let start = 0;
  for (let i = 0; i < d.length; i++) {
    if (d.charCodeAt(i) < 0x80) continue;
    const cp = codePointAt(d, i);
    const width = cp > 0xffff ? 2 : 1;
    if (cp >= 0 && (FLAGS[cp] & IS_MARK) !== 0) {
      out += d.slice(start, i);
      start = i + width;
    }
    i += width - 1;
  }
  return start === 0 ? d : out + d.slice(start);
}

/** Per-character lowercase, as Rust's `char::to_lowercase` on each character. */
function lowercase(s: string): string {
  if (!anyFlag(s, IS_LOWERCASE_EXCEPTION)) {
    // String.prototype.toLowerCase is per character except for the final-sigma rule, which HF lacks.
    return (s.includes("\u03a3") ? s.replaceAll("\u03a3", "\u03c3") : s).toLowerCase();
  }
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const cp = codePointAt(s, i);
    const width = cp > 0xffff ? 2 : 1;
    const ch = s.slice(i, i + width);
    out += cp >= 0 && (FLAGS[cp] & IS_LOWERCASE_EXCEPTION) !== 0 ? LOWER_MAP.get(cp)! : ch.toLowerCase();
    i += width - 1;
  }
  return out;
}

/** BertNormalizer.normalize_str: the normalized text of `text`. */
export function normalizeBert(text: string, options: BertNormalizerOptions): string {
  let s = cleanAndPad(text, options.cleanText, options.handleChineseChars);
  if (options.stripAccents) s = stripAccents(s);
  if (options.lowercase) s = lowercase(s);
  return s;
}

/**
 * BertPreTokenizer on normalized text: calls `word(start, end, chars)` for each word, where
 * [start, end) are UTF-16 offsets into `text` and `chars` counts code points (HF's word length).
 */
export function forEachBertWord(
  text: string,
  word: (start: number, end: number, chars: number) => void,
): void {
  let start = -1;
  let chars = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = codePointAt(text, i);
    const width = cp > 0xffff ? 2 : 1;
    const flags = cp < 0 ? 0 : FLAGS[cp];
    if ((flags & (IS_SPLIT_SPACE | IS_PUNCTUATION)) !== 0) {
      if (start >= 0) word(start, i, chars);
      start = -1;
      if ((flags & IS_PUNCTUATION) !== 0) word(i, i + width, 1);
    } else {
      if (start < 0) {
        start = i;
        chars = 0;
      }
      chars++;
    }
    i += width - 1;
  }
  if (start >= 0) word(start, text.length, chars);
}

/** BertPreTokenizer.pre_tokenize_str on normalized text: the words. */
export function preTokenizeBert(text: string): string[] {
  const words: string[] = [];
  forEachBertWord(text, (start, end) => words.push(text.slice(start, end)));
  return words;
}
