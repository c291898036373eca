/**
 * The offline demo's synthetic sentence-acceptability task (a tiny CoLA).
 *
 * Acceptable sentences come from a small English grammar: determiners, singular and plural nouns,
 * adjectives, intransitive and strictly transitive verbs with present-tense agreement, "does/do not"
 * negation, and a subject modified by a prepositional phrase ("the dog near the cats runs") or a
 * relative clause ("the dog that the cats like runs", "the dog that likes the cats runs").
 *
 * Unacceptable sentences are acceptable ones with one error of a known kind (see
 * {@linkcode DEMO_ERROR_KINDS}). Both labels are drawn from the same mix of sentence templates (a
 * template is "a sentence this error kind applies to"), so sentence shape alone predicts nothing:
 * e.g. half of the sentences whose subject carries an opposite-number "attractor" noun are correct.
 * Every corrupted sentence is checked with {@linkcode isDemoGrammatical} and dropped if the grammar
 * still accepts it (dropping "the" from a plural noun leaves a correct bare plural, for one). By
 * default each unacceptable sentence comes with the acceptable one it was made from (a minimal pair,
 * as in BLiMP), in the same split.
 *
 * Learnability (tests/torch/demo_learnability.py, 2 layers, hidden 64): bag-of-words logistic
 * regression stays far below a model that sees word order, and the tiny BERT reaches about 90% on
 * validation after 3 epochs of the default 4000 sentences with lr 2e-3, batch 16, initializer_range
 * 0.05 and no dropout; "attractor" errors stay the hardest (the model tends to agree with the nearest
 * noun), which is the point of having them.
 * @module
 */

import { Rng } from "../../kernels/random.ts";
import { DEMO_LEXICON, demoWordPieces, type Stem } from "./vocab.ts";

/** One demo example. */
export interface DemoExample {
  /** Lowercase words separated by spaces, ending in a period: "the dogs near the cat run." */
  text: string;
  /** 1 acceptable, 0 unacceptable (index into {@linkcode DEMO_LABELS}). */
  label: number;
  /** "ok" for acceptable sentences, else the error kind (one of {@linkcode DEMO_ERROR_KINDS}). */
  kind: string;
}

/** Label names by class id: 0 unacceptable, 1 acceptable (as in CoLA). */
export const DEMO_LABELS = ["unacceptable", "acceptable"];

/**
 * The error kinds of unacceptable sentences:
 * - `agreement`: the main verb disagrees with a plain subject ("the dogs runs.", "the dog do not run.");
 * - `attractor`: the main verb disagrees with a subject whose PP or relative clause holds a noun of the
 *   other number, which the verb agrees with instead ("the dog near the cats run.");
 * - `word-order`: determiner and noun swapped ("dog the runs."), or the verb before the subject
 *   ("likes the dog the cat.");
 * - `missing-determiner`: a singular noun without its determiner ("the dog likes cat.");
 * - `extra-determiner`: a second determiner ("the the dog runs.", "my a cat sleeps.");
 * - `missing-object`: a transitive verb without its object ("the dog likes.").
 */
export const DEMO_ERROR_KINDS = [
  "agreement",
  "attractor",
  "word-order",
  "missing-determiner",
  "extra-determiner",
  "missing-object",
] as const;

/** One error kind of {@linkcode DEMO_ERROR_KINDS}. */
export type DemoErrorKind = typeof DEMO_ERROR_KINDS[number];

/**
 * How often each template/error kind is drawn (for both labels), tuned so the demo's tiny BERT learns
 * the task within its ~3-minute budget on a software adapter: long-distance "attractor" agreement is
 * kept rare because a 2-layer model needs thousands of steps for it (measured: 64% -> 83% validation
 * accuracy in 3 epochs when it went from 20% to 5% of the draws).
 */
const KIND_WEIGHTS: Record<DemoErrorKind, number> = {
  "agreement": 0.3,
  "attractor": 0.05,
  "word-order": 0.2,
  "missing-determiner": 0.15,
  "extra-determiner": 0.15,
  "missing-object": 0.15,
};

/**
 * How often each optional part of a sentence is drawn. Kept low so most sentences are short (5.3
 * words on average): one changed token is then a larger share of the input, and in the torch check a
 * 2-layer BERT learned the short mix clearly faster than one with twice these rates.
 */
const PROB = {
  /** A plural noun phrase without a determiner ("dogs run."). */
  bare: 0.1,
  /** An adjective before a noun. */
  adj: 0.15,
  /** A negated verb ("does not run"). */
  neg: 0.1,
  /** A transitive verb (else intransitive). */
  trans: 0.4,
  /** A prepositional phrase on the subject. */
  pp: 0.15,
  /** A relative clause on the subject (when there is no PP). */
  rc: 0.1,
  /** A prepositional phrase on the object of a main verb whose subject has no modifier. */
  objpp: 0.05,
};

/**
 * Acceptable sentences have at most this many WordPiece tokens (period included, [CLS]/[SEP] not);
 * an extra determiner makes it one more, so every example fits 16 tokens with [CLS] and [SEP].
 */
const MAX_PIECES = 13;

/** Options of {@linkcode generateDemoData}. */
export interface DemoDataOptions {
  /** Seeds every draw; the same seed gives the same splits. @default 42 */
  seed?: number;
  /** Training examples. @default 4000 */
  train?: number;
  /** Validation examples (the same for any `train` size). @default 500 */
  validation?: number;
  /** Test examples (the same for any `train` or `validation` size). @default 500 */
  test?: number;
  /**
   * Emit each unacceptable sentence together with the acceptable sentence it was made from, so the
   * model sees the one change that makes the difference (a minimal pair); else the two labels come
   * from independent sentences. Pairs never straddle splits. @default true
   */
  minimalPairs?: boolean;
}

/** The three splits of {@linkcode generateDemoData}. */
export interface DemoData {
  train: DemoExample[];
  validation: DemoExample[];
  test: DemoExample[];
}

/**
 * Generates the demo's train/validation/test splits. Each split has half acceptable sentences
 * (the extra one of an odd count is acceptable), in shuffled order; no text occurs twice anywhere.
 * The test split is drawn first and validation second, each from its own seeded stream, so both stay
 * the same whatever the later splits' sizes.
 * @throws {RangeError} when a size is not a non-negative integer or `seed` is not an integer.
 * @example
 * ```ts
 * import { generateDemoData } from "./grammar.ts";
 * const { train, validation } = generateDemoData({ seed: 1, train: 100, validation: 20, test: 20 });
 * train.length; // 100
 * validation.filter((e) => e.label === 1).length; // 10
 * ```
 */
export function generateDemoData(options: DemoDataOptions = {}): DemoData {
  const seed = options.seed ?? 42;
  if (!Number.isInteger(seed)) {
    throw new RangeError(`Demo data seed must be an integer, got ${seed}; pass e.g. { seed: 42 }`);
  }
  const sizes = {
    train: options.train ?? 4000,
    validation: options.validation ?? 500,
    test: options.test ?? 500,
  };
  for (const [name, n] of Object.entries(sizes)) {
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`Demo data size "${name}" must be a non-negative integer, got ${n}`);
    }
  }
  const root = new Rng(seed);
  const streams = {
    test: new Rng(root.nextU32()),
    validation: new Rng(root.nextU32()),
    train: new Rng(root.nextU32()),
  };
  const seen = new Set<string>();
  const pairs = options.minimalPairs ?? true;
  const test = generateSplit(streams.test, sizes.test, seen, pairs);
  const validation = generateSplit(streams.validation, sizes.validation, seen, pairs);
  const train = generateSplit(streams.train, sizes.train, seen, pairs);
  return { train, validation, test };
}

function generateSplit(rng: Rng, n: number, seen: Set<string>, pairs: boolean): DemoExample[] {
  const out: DemoExample[] = [];
  while (out.length < n) {
    // The kind is fixed before the retries, so rarely applicable kinds keep their share.
    const kind = pickWeighted(rng, KIND_WEIGHTS);
    for (let attempt = 0;; attempt++) {
      if (attempt > 10_000) {
        throw new RangeError(
          `Cannot draw ${n} distinct demo sentences: the grammar ran out of new ones after ${seen.size}; ` +
            "ask for fewer examples",
        );
      }
      const pair = drawPair(rng, kind);
      if (pair === null) continue;
      // Acceptable first: an odd count gets one more acceptable sentence.
      const wanted = pairs && n - out.length >= 2 ? pair : [pair[out.length % 2]];
      if (wanted.some((e) => seen.has(e.text))) continue;
      for (const e of wanted) seen.add(e.text);
      out.push(...wanted);
      break;
    }
  }
  return rng.shuffle(out);
}

/** A sentence the kind applies to and its corrupted twin, [acceptable, unacceptable]; null to retry. */
function drawPair(rng: Rng, kind: DemoErrorKind): [DemoExample, DemoExample] | null {
  const sentence = drawSentence(rng);
  const text = render(sentence);
  if (demoWordPieces(text).length > MAX_PIECES) return null;
  const corrupted = corrupt(rng, sentence, kind);
  if (corrupted === null) return null; // this sentence does not fit the template
  if (!isDemoGrammatical(text)) throw new Error(`Demo grammar bug: generated "${text}" is rejected`);
  const bad = render(corrupted);
  if (isDemoGrammatical(bad)) return null; // the "error" happens to be grammatical; draw again
  return [{ text, label: 1, kind: "ok" }, { text: bad, label: 0, kind }];
}

function pickWeighted<K extends string>(rng: Rng, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as [K, number][];
  let u = rng.uniform() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [key, w] of entries) {
    u -= w;
    if (u < 0) return key;
  }
  return entries[entries.length - 1][0];
}

// ---------------------------------------------------------------------------------------------
// Sentences as tagged words, so corruptions can find the main verb, the object and each determiner.

type Slot = "subject" | "object" | "inner";

interface Word {
  text: string;
  tag: "det" | "adj" | "noun" | "verb" | "aux" | "not" | "prep" | "that" | "period";
  /** Number of the noun phrase (det, adj, noun) or of the verb's subject (verb, aux). */
  plural: boolean;
  /** Which noun phrase a det/adj/noun belongs to: the subject, the object, or one inside a modifier. */
  slot?: Slot;
  /** True on the finite main verb, or on the auxiliary of a negated main verb. */
  main?: boolean;
  /** True on every word of the main verb's object. */
  object?: boolean;
  /** On the main verb: whether it is transitive. */
  transitive?: boolean;
  /** On the head noun of the subject: whether its modifier holds a noun of the other number. */
  attractor?: boolean;
  /** The stem of a noun or verb, to flip its number; auxiliaries have none. */
  stem?: Stem;
}

const L = DEMO_LEXICON;

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** "dog"/"dogs" by number. */
function nounForm(stem: Stem, plural: boolean): string {
  return plural ? stem + "s" : stem;
}

/** Present tense agreeing with a subject of the given number: "runs"/"run", "does"/"do". */
function verbForm(stem: Stem | undefined, plural: boolean): string {
  if (stem === undefined) return plural ? L.auxiliary.plural : L.auxiliary.singular;
  return plural ? stem : stem + "s";
}

/** det? adj? noun. Plural noun phrases are sometimes bare ("dogs"); singular ones never are. */
function nounPhrase(rng: Rng, plural: boolean, slot: Slot): Word[] {
  const words: Word[] = [];
  if (!plural || rng.uniform() >= PROB.bare) {
    const dets = [...L.determinersAny, ...(plural ? L.determinersPlural : L.determinersSingular)];
    words.push({ text: pick(rng, dets), tag: "det", plural, slot });
  }
  if (rng.uniform() < PROB.adj) words.push({ text: pick(rng, L.adjectives), tag: "adj", plural, slot });
  const noun = pick(rng, L.nouns);
  words.push({ text: nounForm(noun, plural), tag: "noun", plural, slot, stem: noun });
  return words;
}

/** Finite verb phrase agreeing with a subject of number `plural`; `main` marks the main clause's. */
function verbPhrase(rng: Rng, plural: boolean, main: boolean, objectModifier: boolean): Word[] {
  const transitive = rng.uniform() < PROB.trans;
  const verb = pick(rng, transitive ? L.transitive : L.intransitive);
  const words: Word[] = [];
  if (rng.uniform() < PROB.neg) {
    words.push({ text: verbForm(undefined, plural), tag: "aux", plural, main, transitive });
    words.push({ text: L.negation, tag: "not", plural });
    words.push({ text: verb, tag: "verb", plural: true }); // the bare infinitive is the stem
  } else {
    words.push({ text: verbForm(verb, plural), tag: "verb", plural, main, transitive, stem: verb });
  }
  if (transitive) {
    const object = nounPhrase(rng, rng.uniform() < 0.5, main ? "object" : "inner");
    if (objectModifier && rng.uniform() < PROB.objpp) {
      object.push({ text: pick(rng, L.prepositions), tag: "prep", plural: false });
      object.push(...nounPhrase(rng, rng.uniform() < 0.5, "inner"));
    }
    for (const w of object) w.object = main;
    words.push(...object);
  }
  return words;
}

/** Subject (maybe with a PP or relative clause), main verb phrase, period. */
function drawSentence(rng: Rng): Word[] {
  const plural = rng.uniform() < 0.5;
  const subject = nounPhrase(rng, plural, "subject");
  const head = subject[subject.length - 1];
  const modifier = rng.uniform();
  let inner: Word[] = [];
  if (modifier < PROB.pp) {
    inner = [
      { text: pick(rng, L.prepositions), tag: "prep", plural: false },
      ...nounPhrase(rng, rng.uniform() < 0.5, "inner"),
    ];
  } else if (modifier < PROB.pp + PROB.rc) {
    const that: Word = { text: L.complementizer, tag: "that", plural: false };
    if (rng.uniform() < 0.5) {
      // Subject relative: "the dog that likes the cats"; the gap is the clause's subject.
      inner = [that, ...verbPhrase(rng, plural, false, false)];
    } else {
      // Object relative: "the dog that the cats like"; the gap is the object of a transitive verb.
      const innerPlural = rng.uniform() < 0.5;
      const verb = pick(rng, L.transitive);
      inner = [that, ...nounPhrase(rng, innerPlural, "inner")];
      if (rng.uniform() < PROB.neg) {
        inner.push({ text: verbForm(undefined, innerPlural), tag: "aux", plural: innerPlural });
        inner.push({ text: L.negation, tag: "not", plural: innerPlural });
        inner.push({ text: verb, tag: "verb", plural: true });
      } else {
        inner.push({ text: verbForm(verb, innerPlural), tag: "verb", plural: innerPlural });
      }
    }
  }
  head.attractor = inner.some((w) => w.tag === "noun" && w.plural !== plural);
  return [
    ...subject,
    ...inner,
    ...verbPhrase(rng, plural, true, inner.length === 0),
    { text: L.period, tag: "period", plural: false },
  ];
}

function render(words: readonly Word[]): string {
  return words.map((w) => w.text).join(" ").replace(/ \.$/, ".");
}

// ---------------------------------------------------------------------------------------------
// Corruptions: each returns the corrupted words, or null when the kind does not apply to the sentence.

function corrupt(rng: Rng, words: Word[], kind: DemoErrorKind): Word[] | null {
  const mainIndex = words.findIndex((w) => w.main);
  const main = words[mainIndex];
  const subjectHead = words.find((w) => w.tag === "noun" && w.slot === "subject")!;
  switch (kind) {
    case "agreement":
    case "attractor": {
      const modified = words.some((w) => w.tag === "prep" || w.tag === "that") &&
        words.findIndex((w) => w.tag === "prep" || w.tag === "that") < mainIndex;
      if (kind === "agreement" ? modified : !subjectHead.attractor) return null;
      const copy = [...words];
      copy[mainIndex] = { ...main, text: verbForm(main.stem, !main.plural), plural: !main.plural };
      return copy;
    }
    case "word-order": {
      const options: (() => Word[])[] = [];
      for (const slot of ["subject", "object"] as const) {
        const det = words.findIndex((w) => w.tag === "det" && w.slot === slot);
        const noun = words.findIndex((w) => w.tag === "noun" && w.slot === slot);
        if (det >= 0) options.push(() => swap(words, det, noun));
      }
      if (main.tag === "verb") {
        options.push(() => [main, ...words.filter((_, i) => i !== mainIndex)]);
      }
      return options.length === 0 ? null : pick(rng, options)();
    }
    case "missing-determiner": {
      const dets = indicesWhere(words, (w) => w.tag === "det" && !w.plural);
      if (dets.length === 0) return null;
      const drop = pick(rng, dets);
      return words.filter((_, i) => i !== drop);
    }
    case "extra-determiner": {
      const dets = indicesWhere(words, (w) => w.tag === "det");
      if (dets.length === 0) return null;
      const at = pick(rng, dets);
      const all = [...L.determinersAny, ...L.determinersSingular, ...L.determinersPlural];
      const extra: Word = { ...words[at], text: pick(rng, all) };
      return [...words.slice(0, at), extra, ...words.slice(at)];
    }
    case "missing-object":
      return main.transitive ? words.filter((w) => !w.object) : null;
  }
}

function swap(words: readonly Word[], i: number, j: number): Word[] {
  const copy = [...words];
  [copy[i], copy[j]] = [copy[j], copy[i]];
  return copy;
}

function indicesWhere(words: readonly Word[], test: (w: Word) => boolean): number[] {
  return words.flatMap((w, i) => (test(w) ? [i] : []));
}

// ---------------------------------------------------------------------------------------------
// A recognizer for the grammar (a slightly larger one: any adjective count, PP and relative clause
// together, modifiers on objects), written independently of the generator above.

type Num = "sg" | "pl";

interface Lookup {
  det: Map<string, Num[]>;
  noun: Map<string, Num>;
  intransitive: Map<string, Num>;
  transitive: Map<string, Num>;
  adjectives: Set<string>;
  prepositions: Set<string>;
}

let lookup: Lookup | undefined;

function lexicon(): Lookup {
  if (lookup) return lookup;
  const det = new Map<string, Num[]>();
  for (const d of L.determinersAny) det.set(d, ["sg", "pl"]);
  for (const d of L.determinersSingular) det.set(d, ["sg"]);
  for (const d of L.determinersPlural) det.set(d, ["pl"]);
  const noun = new Map<string, Num>(L.nouns.flatMap((w) => [[w, "sg"], [w + "s", "pl"]]));
  const verbs = (stems: readonly Stem[]) =>
    new Map<string, Num>(stems.flatMap((w) => [[w + "s", "sg"], [w, "pl"]]));
  lookup = {
    det,
    noun,
    intransitive: verbs(L.intransitive),
    transitive: verbs(L.transitive),
    adjectives: new Set(L.adjectives),
    prepositions: new Set(L.prepositions),
  };
  return lookup;
}

interface Parse {
  end: number;
  num: Num;
}

/** det? adj* noun; a missing determiner only before a plural noun. */
function parseSimpleNp(w: readonly string[], i: number): Parse[] {
  const lex = lexicon();
  const dets = lex.det.get(w[i]);
  let j = dets ? i + 1 : i;
  while (lex.adjectives.has(w[j])) j++;
  const num = lex.noun.get(w[j]);
  if (num === undefined) return [];
  if (dets ? !dets.includes(num) : num !== "pl") return [];
  return [{ end: j + 1, num }];
}

/** A simple noun phrase, optionally followed by a PP, then optionally by a relative clause. */
function parseNp(w: readonly string[], i: number): Parse[] {
  const lex = lexicon();
  const out: Parse[] = [];
  for (const np of parseSimpleNp(w, i)) {
    const afterPp = [np.end];
    if (lex.prepositions.has(w[np.end])) afterPp.push(...parseSimpleNp(w, np.end + 1).map((p) => p.end));
    for (const end of afterPp) {
      out.push({ end, num: np.num });
      if (w[end] !== L.complementizer) continue;
      // Subject relative: that + verb phrase agreeing with the head.
      for (const vpEnd of parseVp(w, end + 1, np.num, false)) out.push({ end: vpEnd, num: np.num });
      // Object relative: that + subject + transitive verb whose object is the gap.
      for (const inner of parseSimpleNp(w, end + 1)) {
        for (const verbEnd of parseFiniteVerb(w, inner.end, inner.num, "transitive")) {
          out.push({ end: verbEnd, num: np.num });
        }
      }
    }
  }
  return out;
}

/** A finite verb of the given kind agreeing with `num`: "likes", or "does not like". */
function parseFiniteVerb(
  w: readonly string[],
  i: number,
  num: Num,
  kind: "transitive" | "intransitive",
): number[] {
  const verbs = lexicon()[kind];
  if (verbs.get(w[i]) === num) return [i + 1];
  const aux = num === "sg" ? L.auxiliary.singular : L.auxiliary.plural;
  if (w[i] === aux && w[i + 1] === L.negation && verbs.get(w[i + 2]) === "pl") return [i + 3];
  return [];
}

/** Verb phrase agreeing with `num`; objects may carry modifiers only when `modifiers`. */
function parseVp(w: readonly string[], i: number, num: Num, modifiers: boolean): number[] {
  const out = parseFiniteVerb(w, i, num, "intransitive");
  for (const verbEnd of parseFiniteVerb(w, i, num, "transitive")) {
    const objects = modifiers ? parseNp(w, verbEnd) : parseSimpleNp(w, verbEnd);
    out.push(...objects.map((o) => o.end));
  }
  return out;
}

/**
 * Whether the demo grammar accepts a sentence: lowercase words separated by single spaces, ending in
 * a period attached to the last word. Every acceptable demo example passes, no unacceptable one does.
 * @example
 * ```ts
 * import { isDemoGrammatical } from "./grammar.ts";
 * isDemoGrammatical("the dog near the cats runs."); // true
 * isDemoGrammatical("the dog near the cats run."); // false
 * ```
 */
export function isDemoGrammatical(text: string): boolean {
  if (!text.endsWith(L.period)) return false;
  const w = [...text.slice(0, -1).split(" "), L.period];
  for (const subject of parseNp(w, 0)) {
    for (const end of parseVp(w, subject.end, subject.num, true)) {
      if (end === w.length - 1) return true;
    }
  }
  return false;
}
