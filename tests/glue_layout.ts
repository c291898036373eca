/**
 * Test-only: small files in each GLUE task's layout, written here (made-up sentences, not GLUE's),
 * with the quirks GLUE's files have: stray quotes (QQP, MNLI, SST-2), MRPC's BOM, a QQP row with
 * missing fields.
 * @module
 */

const BOM = "\ufeff";
export const GLUE_LAYOUT: Record<string, Record<string, string>> = {
  cola: {
    "train.tsv": "gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\nck01\t1\t\tShe left.\n",
    "dev.tsv": "gj04\t1\t\tWe ran.\nad03\t0\t*\tRan we the.\n",
  },
  sst2: {
    "train.tsv": 'sentence\tlabel\na gentle , moving film \t1\ndull and "long \t0\n',
    "dev.tsv": "sentence\tlabel\nit 's a charming journey . \t1\n",
  },
  mrpc: {
    "train.tsv":
      `${BOM}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t11\t12\tHe said "yes.\tHe agreed.\n0\t13\t14\tRain fell.\tThe sun shone.\n`,
    "dev.tsv":
      `${BOM}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t21\t22\tShe won.\tShe was the winner.\n`,
  },
  stsb: {
    "train.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n" +
      "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000\n" +
      "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays a flute.\tA man eats.\t0.800\n",
    "dev.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n" +
      "0\tmain-forums\tdeft\t2014\t0001\tnone\tnone\tA dog runs.\tA dog is running.\t4.2\n",
  },
  qqp: {
    "train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n" +
      '1\t1\t2\tWhat is "best" coffee?\tWhich coffee is best?\t1\n' +
      '2\t3\t4\t"Why is the sky blue?\tHow do I cook rice?\t0\n' +
      "3\t5\t6\tHow old is the moon?\n" + // missing question2 and label: GLUE's reader skips it
      "4\t7\t8\tWhat is tea?\tWhat's tea?\t1\n",
    "dev.tsv":
      'id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n5\t9\t10\tIs it "raining"?\tIs rain falling?\t1\n',
  },
  mnli: {
    "train.tsv":
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n" +
      '0\t1\t1e\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t"Stop, he said.\tHe said nothing.\tcontradiction\tcontradiction\n' +
      "1\t2\t2n\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tThe dog barked.\tThe dog was loud.\tneutral\tneutral\n" +
      "2\t3\t3e\tgov\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tA man sleeps.\tA person sleeps.\tentailment\tentailment\n",
    "dev_matched.tsv":
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
      "0\t1\t1n\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tIt rains.\tIt is wet.\tentailment\tentailment\tneutral\tentailment\tentailment\tentailment\n",
    "dev_mismatched.tsv":
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
      '0\t1\t1c\tverbatim\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tHe sang "loud.\tHe was silent.\tcontradiction\tcontradiction\tcontradiction\tneutral\tcontradiction\tcontradiction\n',
  },
  qnli: {
    "train.tsv": "index\tquestion\tsentence\tlabel\n0\tWho wrote it?\tIt was written by Ann.\tentailment\n" +
      "1\tWhere is it?\tThe sky is blue.\tnot_entailment\n",
    "dev.tsv": "index\tquestion\tsentence\tlabel\n0\tWhen?\tIn 1990.\tentailment\n",
  },
  rte: {
    "train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tAnn owns a car.\tAnn has a car.\tentailment\n" +
      "1\tBob is tall.\tBob is short.\tnot_entailment\n",
    "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tIt snowed.\tIt was cold.\tnot_entailment\n",
  },
  wnli: {
    "train.tsv":
      "index\tsentence1\tsentence2\tlabel\n0\tThe cup fell because it was light.\tThe cup was light.\t1\n" +
      "1\tThe cup fell because it was light.\tThe table was light.\t0\n",
    "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tHe thanked him because he helped.\tHe helped.\t1\n",
  },
};
