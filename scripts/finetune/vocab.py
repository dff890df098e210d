"""Trains a small SentencePiece-style BPE vocabulary (llama.cpp's 'llama' tokenizer model) on text.

Layout, as stories260K's: <unk> (0), <s> (1), </s> (2), the 256 byte tokens <0x00>..<0xFF> (3..258, SPM's byte
fallback for characters not in the vocabulary), then the characters seen at least `min_char_count` times,
then one token per BPE merge, in merge order. Scores: 0 for the specials and bytes, then decreasing
(-rank) so that llama.cpp's SPM tokenizer (which merges the adjacent pair whose concatenation has the
highest score) replays the merges in the order they were learned.

Words are SentencePiece's: a space becomes '▁' and starts the word after it (add_space_prefix puts one before
the text); newlines are pieces of their own. Merges never cross a word boundary.
"""

import collections
import heapq
import re

SPACE = '\u2581'
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6


def words_of(text):
    text = SPACE + text.replace(' ', SPACE)
    # A word: optional leading ▁ run's last ▁ plus non-space, non-newline characters; or a run of newlines.
    return re.findall(SPACE + '?[^' + SPACE + '\n]+|' + SPACE + '|\n+', text)


def train_vocab(texts, size, min_char_count=50):
    counts = collections.Counter()
    for t in texts:
        counts.update(words_of(t))
    chars = collections.Counter()
    for w, c in counts.items():
        for ch in w:
            chars[ch] += c
    tokens = ['<unk>', '<s>', '</s>'] + ['<0x%02X>' % b for b in range(256)]
    types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL] + [TOKEN_BYTE] * 256
    alphabet = sorted((ch for ch, c in chars.items() if c >= min_char_count), key=lambda ch: (-chars[ch], ch))
    known = set(tokens)
    for ch in alphabet:
        if ch not in known:
            tokens.append(ch)
            types.append(TOKEN_NORMAL)
            known.add(ch)
    n_merges = size - len(tokens)
    if n_merges < 0:
        raise ValueError('vocabulary size %d is smaller than the %d base tokens' % (size, len(tokens)))

    # Incremental BPE over the distinct words: pair counts, and for each pair the words that hold it.
    words = [list(w) for w in counts]
    freq = [counts[w] for w in counts]
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            if a in known and b in known:
                pair_count[(a, b)] += freq[i]
                where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        negc, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -negc or -negc <= 0:
            continue  # stale entry
        merged = p[0] + p[1]
        if merged in known:
            pair_count[p] = 0
            continue
        merges.append(merged)
        known.add(merged)
        touched = collections.Counter()
        for i in list(where.pop(p, ())):
            w = words[i]
            f = freq[i]
            # Remove this word's pairs, merge, add them back.
            for a, b in zip(w, w[1:]):
                if a in known and b in known:
                    pair_count[(a, b)] -= f
                    touched[(a, b)] += 0
            j = 0
            nw = []
            while j < len(w):
                if j + 1 < len(w) and w[j] == p[0] and w[j + 1] == p[1]:
                    nw.append(merged)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[i] = nw
            for a, b in zip(nw, nw[1:]):
                if a in known and b in known:
                    pair_count[(a, b)] += f
                    where[(a, b)].add(i)
                    touched[(a, b)] += 0
        pair_count[p] = 0
        for q in touched:
            if pair_count[q] > 0:
                heapq.heappush(heap, (-pair_count[q], q))
    for m in merges:
        tokens.append(m)
        types.append(TOKEN_NORMAL)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return {'tokens': tokens, 'scores': scores, 'types': types}
