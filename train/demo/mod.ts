/**
 * The offline demo's data: a synthetic sentence-acceptability task generated from a tiny English
 * grammar (agreement, attractors, word order, determiners, objects), and the WordPiece vocabulary
 * that covers it, so a tiny BERT can be trained from scratch with no network and no downloads.
 *
 * @example
 * ```ts
 * import { demoVocabulary, generateDemoData } from "./mod.ts";
 * const { train } = generateDemoData({ train: 10, validation: 0, test: 0 });
 * console.log(train[0].text, train[0].label, demoVocabulary().length);
 * ```
 * @module
 */

export {
  DEMO_ERROR_KINDS,
  DEMO_LABELS,
  type DemoData,
  type DemoDataOptions,
  type DemoErrorKind,
  type DemoExample,
  generateDemoData,
  isDemoGrammatical,
} from "./grammar.ts";
export { DEMO_LEXICON, DEMO_SPECIAL_TOKENS, demoVocabulary, demoWordPieces, type Stem } from "./vocab.ts";
