"""Checksummed identifiers for the anonymizer corpus: Kazakh IIN and BIN, Luhn card numbers,
IBANs, and the look-alikes that must fail (12-digit numbers whose check digit is wrong).
Standard library only; every generator takes a random.Random so the corpus is reproducible."""

W1 = list(range(1, 12))
W2 = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]


def kz_check(d11):
    """The Kazakh check digit of 11 digits, or None when both passes give 10."""
    d = [int(c) for c in d11]
    r = sum(a * b for a, b in zip(d, W1)) % 11
    if r == 10:
        r = sum(a * b for a, b in zip(d, W2)) % 11
        if r == 10:
            return None
    return r


def kz_valid(s):
    s = ''.join(c for c in s if c.isdigit())
    return len(s) == 12 and kz_check(s[:11]) == int(s[11])


def iin(rng):
    """A valid IIN: YYMMDD, century/sex digit, 4 registration digits, check digit."""
    while True:
        c = rng.choice([3, 4, 5, 6])             # 1900s (3 male, 4 female) or 2000s (5, 6)
        yy = rng.randint(40, 99) if c in (3, 4) else rng.randint(0, 8)
        mm = rng.randint(1, 12)
        dd = rng.randint(1, 28)
        body = '%02d%02d%02d%d%04d' % (yy, mm, dd, c, rng.randint(0, 9999))
        k = kz_check(body)
        if k is not None:
            return body + str(k)


def bin_(rng):
    """A valid BIN: YYMM of registration, type (4 resident, 5 non-resident, 6 sole trader),
    attribute (0 head office, 1 branch, 2 representative), 5 digits, check digit."""
    while True:
        body = '%02d%02d%d%d%05d' % (rng.randint(0, 24), rng.randint(1, 12),
                                     rng.choice([4, 5, 6]), rng.choice([0, 1, 2]),
                                     rng.randint(0, 99999))
        k = kz_check(body)
        if k is not None:
            return body + str(k)


def bad12(rng):
    """12 digits that are not an IIN/BIN: the check digit is wrong."""
    while True:
        body = '%011d' % rng.randint(10 ** 9, 10 ** 11 - 1)
        k = kz_check(body)
        wrong = [str(x) for x in range(10) if k is None or x != k]
        s = body + rng.choice(wrong)
        if not kz_valid(s):
            return s


def luhn_ok(s):
    d = [int(c) for c in s if c.isdigit()][::-1]
    t = 0
    for i, x in enumerate(d):
        if i % 2:
            x *= 2
            if x > 9:
                x -= 9
        t += x
    return t % 10 == 0


def luhn_complete(prefix, length, rng):
    s = prefix + ''.join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for c in '0123456789':
        if luhn_ok(s + c):
            return s + c
    raise AssertionError('unreachable')


CARD_KINDS = [('4', 16), ('5', 16), ('2200', 16), ('2202', 16), ('4', 13), ('37', 15),
              ('62', 19), ('62', 16), ('6', 18), ('51', 16), ('4400', 16)]


def card(rng, kind=None):
    prefix, n = kind or rng.choice(CARD_KINDS)
    if prefix == '5':
        prefix = '5' + str(rng.randint(1, 5))
    return luhn_complete(prefix, n, rng)


def not_luhn(rng, n):
    while True:
        s = ''.join(str(rng.randint(0, 9)) for _ in range(n))
        if s[0] != '0' and not luhn_ok(s):
            return s


def iban_check(country, bban):
    s = bban + country + '00'
    num = ''.join(str(int(c, 36)) for c in s)
    return '%02d' % (98 - int(num) % 97)


def iban_ok(s):
    s = s.replace(' ', '')
    t = s[4:] + s[:4]
    return int(''.join(str(int(c, 36)) for c in t)) % 97 == 1


def _digits(rng, n):
    return ''.join(str(rng.randint(0, 9)) for _ in range(n))


def iban(rng, country='KZ'):
    if country == 'KZ':     # 3-digit bank code, 13 account characters
        bban = rng.choice(['125', '601', '722', '914', '998', '856', '470']) + \
            rng.choice(['KZT', '000', '001']) + _digits(rng, 10)
    elif country == 'DE':
        bban = _digits(rng, 18)
    elif country == 'GB':
        bban = rng.choice(['NWBK', 'BARC', 'HBUK']) + _digits(rng, 14)
    elif country == 'TR':
        bban = _digits(rng, 22)
    elif country == 'AE':
        bban = _digits(rng, 19)
    elif country == 'FR':
        bban = _digits(rng, 23)
    else:
        raise ValueError(country)
    s = country + iban_check(country, bban) + bban
    assert iban_ok(s)
    return s


def group(s, sizes, sep=' '):
    out, i = [], 0
    for n in sizes:
        if i >= len(s):
            break
        out.append(s[i:i + n])
        i += n
    if i < len(s):
        out.append(s[i:])
    return sep.join(out)


def group4(s, sep=' '):
    return sep.join(s[i:i + 4] for i in range(0, len(s), 4))
