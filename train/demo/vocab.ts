/**
 * The offline demo's lexicon and its BERT-style vocabulary. Every word the demo grammar can emit is
 * listed here once, so the WordPiece tokenizer built from {@linkcode demoVocabulary} never needs [UNK].
 * Nouns and adjectives start with a consonant so "a" never needs to become "an".
 * @module
 */

/** A word with a singular and a plural form (for verbs the plural form is also the bare infinitive). */
export interface Inflected {
  /** "dog", "runs". */
  singular: string;
  /** "dogs", "run". */
  plural: string;
}

function inflect(pairs: string): Inflected[] {
  return pairs.split(" ").map((pair) => {
    const [singular, plural] = pair.split("/");
    return { singular, plural };
  });
}

/** The closed word lists of the demo grammar. */
export const DEMO_LEXICON = {
  /** Determiners that fit either number. */
  determinersAny: ["the", "my"],
  /** Determiners of singular nouns only. */
  determinersSingular: ["a", "every", "this"],
  /** Determiners of plural nouns only. */
  determinersPlural: ["these", "two", "some"],
  nouns: inflect(
    "dog/dogs cat/cats bird/birds horse/horses boy/boys girl/girls teacher/teachers " +
      "farmer/farmers doctor/doctors man/men child/children",
  ),
  adjectives: ["big", "small", "happy", "tired", "young", "quiet", "clever", "lazy"],
  /** Verbs that never take an object here. */
  intransitive: inflect(
    "runs/run sleeps/sleep laughs/laugh smiles/smile waits/wait arrives/arrive cries/cry",
  ),
  /** Verbs that cannot drop their object ("the dog likes." is unacceptable). */
  transitive: inflect(
    "likes/like needs/need carries/carry finds/find admires/admire wants/want hates/hate owns/own fixes/fix",
  ),
  prepositions: ["near", "behind", "with", "beside", "under"],
  /** The negation auxiliary: "the dog does not run", "the dogs do not run". */
  auxiliary: { singular: "does", plural: "do" } as Inflected,
  negation: "not",
  /** Introduces relative clauses: "the dog that the cats chase runs". */
  complementizer: "that",
  period: ".",
} as const;

/** The special tokens at the head of the vocabulary, [PAD] first (id 0). */
export const DEMO_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

/** Every word (and the period) the grammar can emit, in lexicon order, each once. */
export function demoWords(): string[] {
  const l = DEMO_LEXICON;
  const forms = (list: readonly Inflected[]) => list.flatMap((w) => [w.singular, w.plural]);
  const words = [
    ...l.determinersAny,
    ...l.determinersSingular,
    ...l.determinersPlural,
    ...forms(l.nouns),
    ...l.adjectives,
    ...forms(l.intransitive),
    ...forms(l.transitive),
    ...l.prepositions,
    l.auxiliary.singular,
    l.auxiliary.plural,
    l.negation,
    l.complementizer,
    l.period,
  ];
  return [...new Set(words)];
}

/**
 * The lines of the demo's `vocab.txt`: the special tokens ([PAD] = 0, [UNK], [CLS], [SEP], [MASK]),
 * then every word and punctuation mark the grammar can emit, whole (no ## pieces are needed).
 * @example
 * ```ts
 * import { demoVocabulary } from "./vocab.ts";
 * const vocab = demoVocabulary();
 * vocab[0]; // "[PAD]"
 * vocab.includes("dogs"); // true
 * ```
 */
export function demoVocabulary(): string[] {
  return [...DEMO_SPECIAL_TOKENS, ...demoWords()];
}
