"""Usage: python3 scripts/migrate_variant_keys.py FILE.toml…

Rewrites each `set = { … }` line of the given preset files so that every key reads `train.<key>`
(quoted), values kept verbatim; commas and `=` inside brackets, braces or strings are left alone."""
import re, sys, pathlib

def top_level_split(text, sep):
    parts, depth, quote, cur = [], 0, None, ''
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = None
        elif c in '"\'':
            quote = c
        elif c in '[{':
            depth += 1
        elif c in ']}':
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(cur); cur = ''; i += len(sep); continue
        cur += c; i += 1
    parts.append(cur)
    return parts

for path in sys.argv[1:]:
    p = pathlib.Path(path); out = []
    for line in p.read_text().splitlines(keepends=True):
        m = re.match(r'^(set = \{ )(.*)( \}\s*)$', line)
        if m:
            items = []
            for item in top_level_split(m.group(2), ', '):
                key, val = top_level_split(item, ' = ')[0], ' = '.join(top_level_split(item, ' = ')[1:])
                key = key.strip().strip('"')
                if not key.startswith('train.'):
                    key = 'train.' + key
                items.append(f'"{key}" = {val}')
            line = m.group(1) + ', '.join(items) + m.group(3)
        out.append(line)
    p.write_text(''.join(out))
