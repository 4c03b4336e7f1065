#!/usr/bin/python3
"""Byte-level BPE trainer and encoder in CLIP's format, for the demo model.

Output: vocab.json (token string -> id) and merges.txt ("#version: 0.2" then
one "a b" merge per line), ordered like CLIP's: the 256 byte characters, the
same with "</w>", one token per merge in merge order, then <|startoftext|> and
<|endoftext|>. sdvk's tokenizer (src/tokenizer/) loads these files with the
code that loads the real CLIP vocabulary.

Captions here are lowercase ASCII words separated by spaces, which CLIP's
split pattern cuts into the same words, so training splits on whitespace.

    bpe.py train -o DIR          (captions from tools/demo/data.py)
    bpe.py encode DIR TEXT       (prints the 77 padded ids)
"""
import collections
import json
import os
import re
import sys

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
CTX = 77


def bytes_to_unicode():
    """CLIP's printable stand-ins for the 256 byte values."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _word_symbols(word, benc):
    s = [benc[b] for b in word.encode("utf-8")]
    s[-1] += "</w>"
    return tuple(s)


def train(texts, max_merges=10000):
    """Merges learnt until every word is one token (or max_merges)."""
    benc = bytes_to_unicode()
    counts = collections.Counter(w for t in texts for w in t.lower().split())
    words = {_word_symbols(w, benc): c for w, c in counts.items()}
    merges = []
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        # most frequent; ties broken by the pair itself so training is deterministic
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def vocab_of(merges):
    benc = bytes_to_unicode()
    toks = list(benc.values())
    toks += [t + "</w>" for t in toks]
    toks += ["".join(m) for m in merges]
    toks += [BOS, EOS]
    vocab = {}
    for i, t in enumerate(toks):
        vocab[t] = i  # a later duplicate wins, as in CLIP's dict(zip(vocab, range))
    return vocab


def write(dirname, merges):
    os.makedirs(dirname, exist_ok=True)
    vocab = vocab_of(merges)
    with open(os.path.join(dirname, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(dirname, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))


class Tokenizer:
    """Encoder for the files written above (captions: ASCII words and spaces)."""

    def __init__(self, dirname):
        with open(os.path.join(dirname, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(dirname, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().strip().split("\n")[1:]
        self.ranks = {tuple(l.split()): i for i, l in enumerate(lines)}
        self.benc = bytes_to_unicode()
        self.bos, self.eos = self.vocab[BOS], self.vocab[EOS]
        self.size = max(self.vocab.values()) + 1
        self.cache = {}  # word -> BPE symbols: training encodes the same few words millions of times

    def bpe(self, word):
        if word not in self.cache:
            self.cache[word] = self._bpe(word)
        return self.cache[word]

    def _bpe(self, word):
        w = list(_word_symbols(word, self.benc))
        while len(w) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(w, w[1:]))]
            r, _ = min(pairs)
            if r == 1 << 30:
                break
            best = (w[[i for rr, i in pairs if rr == r][0]], w[[i for rr, i in pairs if rr == r][0] + 1])
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            w = out
        return w

    def encode(self, text):
        """77 ids: BOS, tokens (at most 75), EOS, padded with EOS."""
        ids = []
        for word in re.findall(r"[a-z]+", text.lower()):
            ids += [self.vocab.get(t, self.eos) for t in self.bpe(word)]
        ids = [self.bos] + ids[:CTX - 2] + [self.eos]
        return ids + [self.eos] * (CTX - len(ids))


def main(argv):
    if len(argv) >= 3 and argv[0] == "train" and argv[1] == "-o":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import data
        merges = train(data.all_caption_words())
        write(argv[2], merges)
        print("%s: %d merges, vocab %d" % (argv[2], len(merges), 514 + len(merges)))
        return 0
    if len(argv) >= 3 and argv[0] == "encode":
        t = Tokenizer(argv[1])
        print(" ".join(str(i) for i in t.encode(" ".join(argv[2:]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
