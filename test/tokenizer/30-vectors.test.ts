// Tokenizer layer 1: id-for-id parity with llama.cpp on every vocabulary of the fixture kit.
// Each `it` checks all cases of one kind for one vocabulary and lists every mismatch.
import { strict as assert } from 'assert';
import { Tokenizer } from '../../lib/tokenizer';
import { OracleCase, sameIds, tokenizerFor, vocabs } from './vocab-data';

function mismatches<T>(items: T[], check: (item: T) => string | null): string {
  const bad = items.map(check).filter((m): m is string => m !== null);
  return bad.length === 0 ? '' : `${bad.length}/${items.length} mismatches:\n${bad.slice(0, 8).join('\n')}`;
}

function idsCheck(tok: Tokenizer, text: string, expected: number[], options: { parseSpecial?: boolean; addSpecial?: boolean }): string | null {
  const got = tok.encode(text, options);
  return sameIds(got, expected) ? null : `  ${JSON.stringify(text)}\n    expected ${expected.join(' ')}\n    got      ${got.join(' ')}`;
}

for (const v of vocabs()) {
  describe(`tokenizer vectors: ${v.name}`, function () {
    let tok: Tokenizer;
    before(function () {
      tok = tokenizerFor(v.gguf);
    });

    it('reads the vocabulary the way llama.cpp does (size, special ids, BOS rule)', function () {
      const o = v.oracle;
      assert.equal(tok.vocabSize, o.n_vocab);
      assert.equal(tok.model, o.tokenizer_model);
      assert.equal(tok.bosId, o.bos);
      assert.equal(tok.eosId, o.eos);
      assert.equal(tok.eotId, o.eot);
      assert.equal(tok.addBos, o.should_prepend_bos);
      assert.equal(tok.addEos, o.add_eos_token === true);
      if (o.eos !== null) assert.ok(tok.isEndOfGeneration(o.eos));
    });

    if (v.upstream) {
      const upstream = v.upstream;
      it(`encodes all ${upstream.length} upstream test-tokenizer-0 vectors`, function () {
        assert.equal(upstream.length, 46);
        const msg = mismatches(upstream, (c) => idsCheck(tok, c.text, c.ids, {}));
        assert.ok(msg === '', msg);
      });
    }

    it(`encodes all ${v.oracle.cases.length} oracle strings (parseSpecial false)`, function () {
      const msg = mismatches(v.oracle.cases, (c: OracleCase) => idsCheck(tok, c.text, c.ids, {}));
      assert.ok(msg === '', msg);
    });

    it('encodes all oracle strings with parseSpecial', function () {
      const msg = mismatches(v.oracle.cases, (c: OracleCase) => idsCheck(tok, c.text, c.ids_parse_special, { parseSpecial: true }));
      assert.ok(msg === '', msg);
    });

    it('adds BOS (and EOS) with addSpecial exactly when llama.cpp does', function () {
      const o = v.oracle;
      const msg = mismatches(o.cases, (c: OracleCase) => {
        const expected = [...(o.should_prepend_bos ? [o.bos!] : []), ...c.ids, ...(o.add_eos_token ? [o.eos!] : [])];
        return idsCheck(tok, c.text, expected, { addSpecial: true });
      });
      assert.ok(msg === '', msg);
    });

    it('decodes all oracle id lists to llama_detokenize text', function () {
      const msg = mismatches(v.oracle.cases, (c: OracleCase) => {
        const got = tok.decode(c.ids);
        return got === c.detok ? null : `  ${JSON.stringify(c.detok)}\n    got ${JSON.stringify(got)}`;
      });
      assert.ok(msg === '', msg);
    });

    it('decodes the parseSpecial ids back to the text when special tokens are rendered', function () {
      const msg = mismatches(v.oracle.cases, (c: OracleCase) => {
        if (sameIds(c.ids, c.ids_parse_special)) return null;
        // Rendered special tokens give the text back, except where an rstrip/lstrip token ate spaces.
        const got = tok.decode(c.ids_parse_special, { unparseSpecial: true });
        const squash = (s: string) => s.replace(/\s+/g, '');
        return squash(got) === squash(c.text) ? null : `  ${JSON.stringify(c.text)}\n    got ${JSON.stringify(got)}`;
      });
      assert.ok(msg === '', msg);
    });
  });
}
