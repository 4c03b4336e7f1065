#!/usr/bin/env python3
"""Independent Python model of sdvk's CLIP tokenizer, for cross-checking the C
implementation (src/tokenizer/) on many prompts.

It follows ../shared/clip/README.md with plain Python: str.lower(),
unicodedata categories and normalisation, and the reference BPE loop on
strings (merge every occurrence of the lowest-ranked pair, repeat). The
`regex` module is not installed, so the split pattern is a hand scanner over
unicodedata categories. Cleaning is the deterministic subset of ftfy.fix_text
that sdvk implements (see src/tokenizer/tokenizer.h).

  clip_tokenize.py --vocab V.txt.gz TEXT...        print ids (77, padded)
  clip_tokenize.py --vocab V.txt.gz --no-pad TEXT  print [BOS]+ids+[EOS]
  clip_tokenize.py --vocab V.txt.gz --crosscheck DUMP_EXE [--count N]
      generates prompts, runs `DUMP_EXE tokens|spans VOCAB FILE` and compares.
  clip_tokenize.py --vocab V.txt.gz --cli-check SDVK_EXE --examples EX.json
      runs `sdvk tokenize` on the examples, generated prompts and error cases.
"""
import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import unicodedata

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode():
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


class ClipTokenizer:
    def __init__(self, path):
        with gzip.open(path, "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1:48894 + 1]]
        self.byte_enc = bytes_to_unicode()
        vocab = list(self.byte_enc.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += [BOS, EOS]
        self.enc = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {}

    # -- BPE: the reference loop, on strings
    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            a, b = best
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        if len(self.cache) < 100000:
            self.cache[token] = word
        return word

    def encode(self, text):
        """text: str (already decoded). Returns ids without BOS/EOS."""
        ids = []
        # HF splits the literal special tokens out first.
        for seg in re.split("(<\\|startoftext\\|>|<\\|endoftext\\|>)", text):
            if seg == BOS or seg == EOS:
                ids.append(self.enc[seg])
            elif seg:
                ids += self.encode_segment(seg)
        return ids

    def encode_segment(self, seg):
        s = lower(collapse(clean(seg)))
        ids = []
        for piece in split(s):
            if piece in (BOS, EOS):
                ids.append(self.enc[piece])
                continue
            t = "".join(self.byte_enc[b] for b in piece.encode("utf-8"))
            ids += [self.enc[w] for w in self.bpe(t)]
        return ids


# -- ftfy subset
LIG = {"Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž",
       "ǆ": "dž", "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj", "ﬀ": "ff",
       "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st"}
WIDTH = {0x3000: " "}
for _i in range(0xFF01, 0xFFF0):
    _a = unicodedata.normalize("NFKC", chr(_i))
    if _a != chr(_i):
        WIDTH[_i] = _a
CONTROL = set(list(range(0, 9)) + [0x0B] + list(range(0x0E, 0x20)) + [0x7F] +
              list(range(0x206A, 0x2070)) + [0xFEFF] + list(range(0xFFF9, 0xFFFD)))


def c1(ch):
    o = ord(ch)
    if 0x80 <= o <= 0x9F:
        try:
            return bytes([o]).decode("cp1252")
        except UnicodeDecodeError:
            return ch  # sloppy: undefined bytes stay
    return ch


def clean(s):
    s = re.sub("\x1b\\[[0-9;]*[A-Za-z]", "", s)
    s = "".join(c1(c) for c in s)
    s = "".join(LIG.get(c, c) for c in s)
    s = s.translate(WIDTH)
    s = re.sub("[\u02bc\u2018-\u201b]", "'", s)
    s = re.sub("[\u201c-\u201f]", '"', s)
    s = "".join(c for c in s if ord(c) not in CONTROL)
    return unicodedata.normalize("NFC", s)


WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def collapse(s):
    return re.sub("[" + WS + "]+", " ", s).strip()


def lower(s):
    return s.lower()


def cat(c):
    return unicodedata.category(c)


def is_l(c):
    return cat(c) in ("Lu", "Ll", "Lt", "Lm", "Lo")


def is_n(c):
    return cat(c) in ("Nd", "Nl", "No")


def is_s(c):
    return re.fullmatch("[" + WS + "]", c) is not None


def split(s):
    """CLIP's pattern, branches in order at each position (IGNORECASE on
    lowercased text: U+017F long s matches 's')."""
    def feq(c, a):
        return c == a or (a == "s" and c == "\u017f")

    def lit(i, word):
        return i + len(word) <= len(s) and all(feq(s[i + k], word[k]) for k in range(len(word)))

    out, i = [], 0
    while i < len(s):
        c = s[i]
        if is_s(c):
            i += 1
            continue
        hit = None
        for sp in (BOS, EOS):
            if lit(i, sp):
                hit = sp
                break
        if hit is None:
            for con in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
                if lit(i, con):
                    hit = con
                    break
        if hit is not None:
            out.append(s[i:i + len(hit)])
            i += len(hit)
            continue
        j = i + 1
        if is_l(c):
            while j < len(s) and is_l(s[j]):
                j += 1
        elif not is_n(c):
            while j < len(s) and not is_s(s[j]) and not is_l(s[j]) and not is_n(s[j]):
                j += 1
        out.append(s[i:j])
        i = j
    return out


# -- A1111 parse_prompt_attention (sdvk rules: ASCII \s and \d; an invalid
#    number is not a weight; backslashes not before a bracket stay text)
RE_ATT = re.compile(r"""\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:[ \t\n\r\f\v]*([+-]?[.0-9]+)[ \t\n\r\f\v]*\)|\)|]|[^\\()\[\]:]+|:""")


def parse_prompt(text):
    res, rb, sb = [], [], []

    def mul(start, m):
        for p in range(start, len(res)):
            res[p][1] *= m

    pos = 0
    while pos < len(text):
        m = RE_ATT.match(text, pos)
        t, w = m.group(0), m.group(1)
        if w is not None:
            try:
                wv = float(w)
            except ValueError:
                t, w = ":", None  # not a weight: the ':' is text
        pos += len(t)
        if t.startswith("\\"):
            # sdvk keeps backslashes that do not escape a bracket
            res.append([t if t in ("\\", "\\\\") else t[1:], 1.0])
        elif t == "(":
            rb.append(len(res))
        elif t == "[":
            sb.append(len(res))
        elif w is not None and rb:
            mul(rb.pop(), wv)
        elif t == ")" and rb:
            mul(rb.pop(), 1.1)
        elif t == "]" and sb:
            mul(sb.pop(), 1 / 1.1)
        else:
            res.append([t, 1.0])
    for p in rb:
        mul(p, 1.1)
    for p in sb:
        mul(p, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


# -- prompt generator
WORDS = ["a", "photo", "of", "the", "cat", "dog", "portrait", "highly", "detailed", "4k", "8k",
         "trending", "artstation", "isn't", "it's", "we'll", "they're", "I'm", "you'd", "ve",
         "masterpiece", "octane", "render", "unreal", "engine", "by", "greg", "rutkowski",
         "HDR", "UHD", "f/1.4", "85mm", "1990s", "x", "ÉCOLE", "crème", "brûlée", "naïve",
         "café", "straße", "ΟΔΟΣ", "Σίσυφος", "привет", "МИР", "抹茶", "東京", "カタカナ",
         "한국어", "عربى", "עברית", "हिन्दी", "ไทย", "🍰", "🎨", "👩‍🎨", "🇫🇷", "❤️", "✨",
         "İstanbul", "ǅ", "ﬁne", "ＡＢＣ１２３", "ｶﾀｶﾅ", "“quoted”", "it’s", "don‘t", "‚low‘",
         "e\u0301", "A\u030a", "ñ", "n\u0303", "½", "²", "Ⅻ", "٣", "١٢٣", "x²", "ß", "ẞ",
         "ſ", "'ſ", "K", "Å", "&amp;", "<|endoftext|>", "<|startoftext|>", "<|ENDOFTEXT|>",
         ":<|endoftext|>", "...", "!!!", "?!", "--", "—", "–", "…", "@user", "#tag", "$100",
         "100%", "C++", "a_b", "snake_case", "(", ")", "[", "]", "{", "}", "'", "''", "'s",
         "'t'", "\"", "\\", "/", "|", "~", "^", "`", "©", "®", "™", "°", "±", "×", "÷",
         "\u00ad", "\u200b", "\u200d", "\ufeff", "\u2060", "\x85", "\x91", "\x93", "\x80",
         "ǈ", "ŉ", "ﬆ", "Ĳ", "ΣΑ", "ΑΣ.", "ʼn", "aaaaaaaaaaaaaaaaaaaaaaaaaaa", "lllll",
         "!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "0000000", "3.14159", "1,000,000", "v1.5",
         "\x1b[31m", "\x01", "\x7f", "\x1c", "\x1f"]
SEPS = [" ", " ", " ", " ", ", ", ",", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2003", "", "-",
        ". ", "; ", "\r\n", "\u2028", "\x0b", "\x0c"]


def rand_chars(rng, n):
    pools = [(0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x300, 0x36F),
             (0x2000, 0x206F), (0x3000, 0x30FF), (0x4E00, 0x4E80), (0xFF00, 0xFFEF),
             (0x1F300, 0x1F64F), (0xAC00, 0xAC40), (0x0600, 0x06FF), (0x0900, 0x097F),
             (0x80, 0x9F), (0x1D400, 0x1D4FF), (0x2150, 0x218F), (0xFB00, 0xFB06)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(pools)
        c = chr(rng.randint(lo, hi))
        if unicodedata.category(c) in ("Cn", "Cs", "Co") or c == "\x00":
            continue
        out.append(c)
    return "".join(out)


def gen_prompts(rng, count):
    ps = []
    for _ in range(count):
        k = rng.random()
        if k < 0.05:
            # final-sigma and case-ignorable contexts, long s in contractions
            alpha = ["Σ", "Α", "σ", "'", ".", ":", "\u0301", " ", "ʰ", "ª", "a", "1", "\u00ad",
                     "İ", "ſ", "'ſ", "ⓐ", "Ⓐ", "ǅ", "\u200d", "·", "’"]
            ps.append("".join(rng.choice(alpha) for _ in range(rng.randint(1, 8))))
        elif k < 0.6:
            n = rng.randint(0, 30 if rng.random() < 0.9 else 120)
            ps.append("".join(rng.choice(WORDS) + rng.choice(SEPS) for _ in range(n)))
        elif k < 0.9:
            ps.append(rand_chars(rng, rng.randint(0, 40)))
        else:
            parts = [rng.choice(WORDS) if rng.random() < 0.5 else rand_chars(rng, 5) for _ in range(8)]
            ps.append(rng.choice(SEPS).join(parts))
    return ps


def gen_weighted(rng, count):
    toks = ["(", ")", "[", "]", ":", "\\(", "\\)", "\\[", "\\]", "\\\\", "\\", ":1.3)", ":0.5)",
            ": 2 )", ":-1)", ":1.2.3)", ":.)", ":+.5)", " ", "cat", "a photo", "dog, ", "BREAK",
            "x", ",", "é", "🍰", "1.5", "(:", ":)"]
    return ["".join(rng.choice(toks) for _ in range(rng.randint(0, 25))) for _ in range(count)]


def run_dump(exe, mode, vocab, items):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(items, f, ensure_ascii=True)
        name = f.name
    try:
        out = subprocess.run([exe, mode, vocab, name], check=True, stdout=subprocess.PIPE).stdout
    finally:
        os.unlink(name)
    return json.loads(out.decode("utf-8"))


def crosscheck(args):
    tk = ClipTokenizer(args.vocab)
    rng = random.Random(args.seed)
    prompts = gen_prompts(rng, args.count)
    got = run_dump(args.crosscheck, "tokens", args.vocab, prompts)
    bad = 0
    for p, g in zip(prompts, got):
        want = tk.encode(p)
        if want != g:
            bad += 1
            if bad <= 10:
                print("MISMATCH %r\n  python %s\n  C      %s" % (p, want, g))
    print("tokens: %d prompts, %d mismatches" % (len(prompts), bad))
    wprompts = gen_weighted(rng, args.count)
    got = run_dump(args.crosscheck, "spans", args.vocab, wprompts)
    wbad = 0
    for p, g in zip(wprompts, got):
        want = [[t, w] for t, w in parse_prompt(p)]
        if want != g:
            wbad += 1
            if wbad <= 10:
                print("SPANS MISMATCH %r\n  python %s\n  C      %s" % (p, want, g))
    print("spans: %d prompts, %d mismatches" % (len(wprompts), wbad))
    return 1 if bad or wbad or len(got) != len(wprompts) else 0


def cli_check(args):
    """Runs `SDVK tokenize` on the worked examples (padded and --no-pad), on
    generated prompts (against this model) and on error cases."""
    exe, fails = args.cli_check, []
    env = dict(os.environ)
    env.pop("SDVK_VOCAB", None)

    def run(argv, stdin=None):
        r = subprocess.run([exe, "tokenize"] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, input=stdin)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def ids_of(out):
        return [int(x) for x in out.strip().split(",")] if out.strip() else []

    with open(args.examples, encoding="utf-8") as f:
        examples = json.load(f)
    for e in examples:
        for pad in (True, False):
            rc, out, err = run(["--vocab", args.vocab] + ([] if pad else ["--no-pad"]) + ["--", e["prompt"]])
            want = e["ids"] if pad else e["ids_unpadded"]
            if rc != 0 or ids_of(out) != want or out.count("\n") != 1:
                fails.append("example %r pad=%s: rc %d out %s err %s" % (e["prompt"], pad, rc, out, err))
    tk = ClipTokenizer(args.vocab)
    rng = random.Random(args.seed)
    for p in gen_prompts(rng, 40):
        rc, out, err = run(["--vocab", args.vocab, "--no-pad", "--", p.replace("\x00", "")])
        if rc != 0 or ids_of(out) != [49406] + tk.encode(p) + [49407]:
            fails.append("generated %r: %s %s" % (p, out, err))
    # several TEXT arguments are joined with one space; SDVK_VOCAB is honoured
    env["SDVK_VOCAB"] = args.vocab
    rc, out, err = run(["--no-pad", "a", "photo", "of", "a", "cat"])
    if ids_of(out) != [49406, 320, 1125, 539, 320, 2368, 49407]:
        fails.append("joined TEXT args via SDVK_VOCAB: %s %s" % (out, err))
    rc, out, err = run(["--no-pad", "--", "-5", "--no-pad"])
    if ids_of(out) != [49406] + tk.encode("-5 --no-pad") + [49407]:
        fails.append("text after --: %s %s" % (out, err))
    rc, out, err = run(["--", ""])
    if ids_of(out) != [49406] + [49407] * 76:
        fails.append("empty prompt: %s %s" % (out, err))
    big = "a " * 300000  # 600 kB through a file (argv is limited to 128 kB per argument)
    rc, out, err = run(["--no-pad", "--file", "-"], stdin=big.encode())
    if rc != 0 or ids_of(out) != [49406] + [320] * 300000 + [49407]:
        fails.append("600 kB prompt via --file -: rc %d, %d ids" % (rc, len(ids_of(out))))
    rc, out, err = run(["--no-pad", "--file", "-"], stdin=b"a\x00 photo\x00")
    if rc != 0 or ids_of(out) != [49406, 320, 1125, 49407]:
        fails.append("NUL bytes in --file: rc %d %s %s" % (rc, out, err))
    rc, out, err = run(["--file", "-"], stdin=b"caf\xe9 \xff\xfe ok")
    if rc != 0 or len(ids_of(out)) != 77:
        fails.append("invalid UTF-8: rc %d %s" % (rc, err))
    env.pop("SDVK_VOCAB")
    rc, out, err = run(["a cat"])
    if rc == 0 or "--vocab" not in err or "SDVK_VOCAB" not in err:
        fails.append("no vocab: rc %d, message %r" % (rc, err))
    rc, out, err = run(["--vocab", "/nonexistent/v.gz", "a"])
    if rc == 0 or "/nonexistent/v.gz" not in err:
        fails.append("missing --vocab file: rc %d %r" % (rc, err))
    rc, out, err = run(["--vocab", args.vocab, "--bogus", "a"])
    if rc == 0 or "--bogus" not in err:
        fails.append("unknown option: rc %d %r" % (rc, err))
    for f in fails:
        print("FAIL", f[:600])
    print("cli: %d failures" % len(fails))
    return 1 if fails else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--no-pad", action="store_true")
    ap.add_argument("--crosscheck", metavar="DUMP_EXE")
    ap.add_argument("--cli-check", metavar="SDVK_EXE")
    ap.add_argument("--examples", help="tokenizer_examples.json (with --cli-check)")
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("text", nargs="*")
    args = ap.parse_args()
    if args.crosscheck:
        return crosscheck(args)
    if args.cli_check:
        return cli_check(args)
    tk = ClipTokenizer(args.vocab)
    ids = [49406] + tk.encode(" ".join(args.text)) + [49407]
    if not args.no_pad:
        ids = ids[:76] + [49407] if len(ids) > 77 else ids + [49407] * (77 - len(ids))
    print(",".join(map(str, ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
