#!/usr/bin/env python3
"""Writes tests/anon/corpus.jsonl and hard.jsonl from the hand-written message templates in
templates.txt and hard_templates.txt.

  tests/anon/build_corpus.py            # rewrite both (deterministic: fixed seeds)
  tests/anon/build_corpus.py --check    # exit 1 when either differs from what it writes
  tests/anon/build_corpus.py --set corpus|hard [--seed N --out FILE]
                                        # the same messages with other values (names, numbers,
                                        # phone forms): a held-out corpus for tests/anon/eval
                                        # --corpus FILE, to see that a detector did not learn
                                        # the committed values

The templates are customer messages written by hand; slots in braces are filled with
generated values so that every checksummed number is valid (kznumbers.py) and every label is
the exact substring the text holds. Slots:
  personal data (labelled): {ph} Kazakh mobile in one of its written forms, {phl} landline,
    {phi} foreign number, {em} e-mail, {iin}, {bin}, {card}, {iban} (KZ), {ibanx} (foreign),
    {fm} {ff} Kazakh/Russian male/female given name, {sm} {sf} surname, {pm} {pf} Russian
    patronymic, {ulm} {kzf} Kazakh patronymic (-ұлы/-улы, -қызы/-кызы), {fml} {ffl} {sml}
    {sfl} Latin transliterations, {fe} {fem} {fef} {se} English given name (any, male,
    female) and surname, [[Text]] a name
    written literally. A name slot may take a case: {fm:acc} {ff:dat} {fm:ins} {ff:gen}
    (Russian) and {fm:kdat} {ff:kgen} {fm:kins} {ff:kacc} (Kazakh), or :low / :up (lower /
    upper case).
    {kz:...} marks a Kazakh-alphabet name pool instead of the Russian-alphabet one.
    The hard corpus adds: {sr} {srf} {kzsr} {kzsrf} {kzsrl} surnames without a Russian
    ending (Russian letters, Kazakh letters, Latin), the Kazakh cases :kloc :kabl :kposs,
    {phs} {phg} a mobile spaced or glued, {badid} 12 digits after an IIN/BIN cue that fail
    the check digit (labelled ID).
  not personal data (not labelled): {price} {amount} {order} {trk} {date} {time} {bad12}
    {code} {qty} {house} {city} {noluhn} (16 digits that fail Luhn); in the hard corpus
    {street} {kzstreet} {enstreet} streets named after people, {model} products and models,
    {year}, {ini} a single initial.
A template line is  LANG|KIND|text  where KIND is P (personal data), N (none) or K (the CRM
knows this contact: its name, phone and e-mail go to "known")."""
import argparse
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kznumbers as nb  # noqa: E402

RU_M = 'Александр Дмитрий Сергей Андрей Алексей Максим Павел Олег Игорь Евгений Виктор Артём ' \
       'Денис Кирилл Никита Владимир Михаил Антон Вадим'.split()
RU_F = 'Елена Ольга Марина Наталья Татьяна Ирина Екатерина Анна Светлана Юлия Ксения ' \
       'Анастасия Виктория Дарья Кристина Оксана Алина Полина'.split()
KZ_M = 'Нурлан Ержан Бауыржан Айдос Ерлан Асхат Данияр Тимур Азамат Канат Марат Алибек ' \
       'Ерасыл Санжар Мейрам Дастан Бекзат Олжас Жандос Алихан Руслан Диас Ильяс Серик ' \
       'Нурсултан Ербол Галым Даурен Медет Берик'.split()
KZ_F = 'Айгерим Асель Динара Жанар Мадина Дина Аружан Гульнара Жансая Салтанат Алия Камила ' \
       'Томирис Назерке Меруерт Айдана Асем Гульмира Дильназ Зарина Балжан Акерке Индира ' \
       'Ляззат Сабина Айжан Жулдыз Камшат'.split()
KK_M = 'Нұрлан Ержан Бауыржан Айдос Асқар Дәурен Ғалым Нұрсұлтан Серік Қайрат Әлихан Бекнұр ' \
       'Ерасыл Мұхтар Төлеген Шыңғыс Ілияс Әділ Жасұлан'.split()
KK_F = 'Айгерім Әсел Динара Жанар Мадина Аружан Гүлнар Жансая Ақерке Мөлдір Назгүл Әсем ' \
       'Гүлмира Балжан Қарлығаш Нұргүл Жібек Айнұр Ләззат'.split()
SUR_M = 'Сапаров Ахметов Жумабаев Нурланов Касымов Сулейменов Оспанов Бекмуханов Искаков ' \
        'Абенов Муратов Тулегенов Есенов Кенжебаев Омаров Жакупов Байжанов Садыков Рахимов ' \
        'Смагулов Иванов Петров Смирнов Кузнецов Соколов Волков Новиков Федоров Лебедев ' \
        'Козлов Алиев Нуржанов Ермеков Дуйсенов'.split()
SUR_X = 'Ким Пак Цой Шевченко Бондаренко Тен Ли Югай Ткаченко Мельник'.split()
LAT_M = 'Nurlan Yerzhan Erzhan Bauyrzhan Aidos Daniyar Timur Azamat Kanat Askar Alibek Sanzhar ' \
        'Arman Olzhas Zhandos Ruslan Dias Yerlan Dauren Berik'.split()
LAT_F = 'Aigerim Aigerym Assel Asel Dinara Madina Zhanar Aruzhan Saltanat Aliya Kamila Tomiris ' \
        'Nazerke Aizhan Gulnara Zhansaya Dana Akerke Indira Dilnaz'.split()
LAT_SM = 'Saparov Akhmetov Zhumabayev Kassymov Suleimenov Ospanov Iskakov Tulegenov Nurlanov ' \
         'Omarov Zhakupov Baizhanov Sadykov Ivanov Petrov Kuznetsov'.split()
EN_F = 'Sarah Emily Jessica Laura Olivia Rachel Emma Hannah Megan Chloe Sophie Kate'.split()
EN_M = 'John Michael David James Robert Daniel Kevin Thomas Andrew Brian Steven Paul'.split()
EN_S = 'Smith Johnson Brown Miller Davis Wilson Taylor Anderson Thompson Walker Clark ' \
       'Harris Robinson Lewis Wright Hughes'.split()
# Surnames without a Russian ending (-ов/-ин), as Kazakh families write them; some of them the
# gazetteer lists, some not (the hard corpus: a surname beside a first name).
SUR_R = 'Жумабай Серикбай Кунанбай Толеу Есжан Сейткали Бекмагамбет Кенесары Мырзабек ' \
        'Бектур Алимжан Шалкар Мусабек Танатар Жетписбай Ержигит Торегали Боранбай Есенгелди ' \
        'Сатыбалды Смайыл Орынбасар Ким Тен Нургали Омар Абди'.split()
SUR_K = 'Жұмабай Серікбай Құнанбай Төлеу Есжан Сейтқали Бекмағамбет Кенесары Мырзабек Бектұр ' \
        'Әлімжан Шалқар Мұсабек Таңатар Жетпісбай Ержігіт Төреғали Боранбай Есенгелді ' \
        'Сатыбалды Смайыл Орынбасар Нұрғали Әбді'.split()
SUR_L = 'Zhumabay Serikbay Kunanbay Toleu Eszhan Seitkali Myrzabek Bektur Alimzhan Shalkar ' \
        'Musabek Tanatar Zhetpisbay Yerzhigit Boranbay Satybaldy Smaiyl Orynbasar Nurgali'.split()
# Streets named after people (not personal data): Russian genitive, Kazakh, Latin.
STREETS = ['Абая', 'Сатпаева', 'Толе би', 'Жандосова', 'Розыбакиева', 'Тимирязева', 'Гагарина',
           'Момышулы', 'Райымбека', 'Байтурсынова', 'Кунаева', 'Муканова', 'Ауэзова',
           'Сейфуллина', 'Жамбыла', 'Валиханова', 'Курмангазы', 'Габдуллина', 'Манаса',
           'Шевченко', 'Пушкина', 'Абылай хана', 'Богенбай батыра', 'Кабанбай батыра',
           'Желтоксан', 'Макатаева', 'Жибек жолы', 'Назарбаева', 'Есенова', 'Айтеке би']
KZ_STREETS = ['Сәтбаев', 'Абай', 'Төле би', 'Жандосов', 'Қабанбай батыр', 'Әуезов', 'Райымбек',
              'Бөгенбай батыр', 'Сейфуллин', 'Жамбыл', 'Құрманғазы', 'Мұқанов', 'Байтұрсынұлы',
              'Әйтеке би', 'Момышұлы', 'Қонаев']
EN_STREETS = ['Satpayev', 'Abay', 'Tole bi', 'Zhandosov', 'Dostyk', 'Kunayev', 'Auezov',
              'Seifullin', 'Kabanbay batyr', 'Baitursynov', 'Rozybakiev', 'Timiryazev']
# Products and models people name (not personal data); some of them are also given names.
MODELS = ['Camry 70', 'Galaxy S24', 'Nexia 3', 'Octavia', 'Tiguan', 'Sonata', 'Malibu 2',
          'Gentra', 'Lacetti', 'Lada Vesta', 'Granta', 'Jetta', 'Cobalt', 'Damas', 'Matiz',
          'Solaris', 'Elantra', 'Priora', 'Kalina', 'Largus', 'Creta', 'Tucson', 'Sportage',
          'Polo', 'Kia Rio', 'Redmi Note 13', 'Poco X6', 'Pixel 8', 'Mate 60', 'Nova 11',
          'iPhone 15 Pro Max', 'Galaxy A55', 'Corolla', 'Land Cruiser Prado', 'Hyundai Accent',
          'камри', 'нексия', 'кобальт', 'Соната', 'Октавия', 'Гентра', 'Малибу', 'Тигуан',
          'Веста', 'Приора', 'Калина', 'Спортейдж', 'Аккорд', 'Aurora', 'Santa Fe', 'Venus']
CITIES = 'Алматы Астана Шымкент Караганда Актобе Атырау Актау Павлодар Костанай Тараз ' \
         'Усть-Каменогорск Семей Кызылорда Туркестан Талдыкорган Кокшетау Петропавловск ' \
         'Уральск Қарағанды Өскемен Ақтөбе Қостанай Almaty Astana Shymkent'.split()
KZ_CODES = ['700', '701', '702', '705', '707', '708', '747', '771', '775', '776', '777', '778']
LANDLINE = ['7172', '727', '7252', '7212', '7132', '7122', '7292', '7182', '7142', '7262']
EMAIL_USERS = ['nurlan.saparov', 'aigerim_88', 'a.bekova+shop', 'dinara.k', 'erzhan1990',
               'madina-zh', 'assel.n', 'timur_kz', 'm.ivanova', 'olzhas.official', 'info',
               'zhanar.a', 'kanat77', 'aidos.b', 'alina_love', 'sergey.petrov', 'j.smith',
               'emily.clark', 'office', 'd.omarov', 'kamila.t', 'buhgalter', 'bauka_95',
               'saltanat.sadykova', "o'connor", 'x', 'nurik-2001', 'a_b_c.d', 'gulnara.zh']
EMAIL_DOMAINS = ['mail.ru', 'gmail.com', 'yandex.kz', 'inbox.ru', 'bk.ru', 'list.ru',
                 'outlook.com', 'icloud.com', 'kaspi.kz', 'clinic-zdorovie.kz', 'yahoo.com',
                 'edu.nu.edu.kz', 'company.co.uk', 'halykbank.kz', 'mail.kz', 'protonmail.com',
                 'my-company.kz', 'MAIL.RU', 'sub.domain.org']


class Line:
    def __init__(self):
        self.ents = []
        self.names = []
        self.phones = []
        self.emails = []

    def ent(self, typ, value):
        if (typ, value) not in [(e['type'], e['value']) for e in self.ents]:
            self.ents.append({'type': typ, 'value': value})
        return value


def phone_forms(code, num):
    a, b, c = num[:3], num[3:5], num[5:]
    return [f'+7 {code} {a} {b} {c}', f'8 ({code}) {a}-{b}-{c}', f'8{code}{num}',
            f'7{code}{num}', f'+7({code}){num}', f'{code} {a} {b} {c}', f'+7{code}{num}',
            f'8 {code} {a} {b}{c}', f'8-{code}-{a}-{b}-{c}', f'+7 {code} {num}',
            f'8 {code} {a} {b} {c}', f'+7-{code}-{a}-{b}{c}', f'8{code} {a} {b} {c}',
            f'+7 ({code}) {a} {b} {c}', f'8 {code} {num}']


def mobile(rng):
    return rng.choice(KZ_CODES), '%07d' % rng.randint(1000000, 9999999)


def landline(rng):
    code = rng.choice(LANDLINE)
    # the subscriber number fills the 10 national digits
    n = 10 - len(code)
    num = '%0*d' % (n, rng.randint(2 * 10 ** (n - 1), 10 ** n - 1))
    if len(num) == 6:
        parts = f'{num[:2]} {num[2:4]} {num[4:]}'
        dash = f'{num[:2]}-{num[2:4]}-{num[4:]}'
    else:
        parts = f'{num[:3]} {num[3:5]} {num[5:]}'
        dash = f'{num[:3]}-{num[3:5]}-{num[5:]}'
    return rng.choice([f'8 {code} {parts}', f'+7 {code} {parts}', f'8 ({code}) {dash}',
                       f'8{code}{num}', f'+7 ({code}) {parts}'])


FOREIGN = [lambda r: '+1 415 555 %04d' % r.randint(1000, 9999),
           lambda r: '+44 20 7946 %04d' % r.randint(0, 9999),
           lambda r: '+996 555 %03d %03d' % (r.randint(100, 999), r.randint(100, 999)),
           lambda r: '+998 90 %03d %02d %02d' % (r.randint(100, 999), r.randint(10, 99),
                                                 r.randint(10, 99)),
           lambda r: '+7 916 %03d %02d %02d' % (r.randint(100, 999), r.randint(10, 99),
                                                r.randint(10, 99)),
           lambda r: '+90 532 %03d %02d %02d' % (r.randint(100, 999), r.randint(10, 99),
                                                 r.randint(10, 99)),
           lambda r: '+971 50 %03d %04d' % (r.randint(100, 999), r.randint(1000, 9999)),
           lambda r: '+86 138 %04d %04d' % (r.randint(1000, 9999), r.randint(1000, 9999)),
           lambda r: '+49 151 %04d %04d' % (r.randint(1000, 9999), r.randint(1000, 9999)),
           lambda r: '+996%09d' % r.randint(500000000, 779999999)]

BACK = set('аоұыуяёю')
FRONT = set('әеөүіиэ')
VOW = BACK | FRONT
VOICELESS = set('кқпстфхцчшщ')


def kk_suffix(word, kind):
    w = word.lower()
    front = False
    for ch in reversed(w):
        if ch in VOW:
            front = ch in FRONT
            break
    last = w[-1]
    soft = last == 'ь'
    if soft:
        last = w[-2]
        front = True
    if kind == 'kdat':
        s = ('ке' if front else 'қа') if last in VOICELESS else ('ге' if front else 'ға')
    elif kind == 'kgen':
        if last in VOW or last in 'мнң':
            s = 'нің' if front else 'ның'
        elif last in VOICELESS or last in 'бвгд':
            s = 'тің' if front else 'тың'
        else:
            s = 'дің' if front else 'дың'
    elif kind == 'kins':
        s = 'пен' if last in VOICELESS else ('бен' if last in 'жз' else 'мен')
    elif kind == 'kacc':
        if last in VOW:
            s = 'ні' if front else 'ны'
        elif last in VOICELESS:
            s = 'ті' if front else 'ты'
        else:
            s = 'ді' if front else 'ды'
    elif kind == 'kloc':
        s = ('те' if front else 'та') if last in VOICELESS else ('де' if front else 'да')
    elif kind == 'kabl':
        if last in 'мнң':
            s = 'нен' if front else 'нан'
        elif last in VOICELESS:
            s = 'тен' if front else 'тан'
        else:
            s = 'ден' if front else 'дан'
    elif kind == 'kposs':
        s = 'м' if last in VOW else ('ім' if front else 'ым')
    else:
        raise ValueError(kind)
    return word + s


def ru_case(name, case, female):
    if female:
        stem, end = name[:-1], name[-1]
        if end == 'я':
            dat = 'и' if name.endswith('ия') else 'е'
            return {'acc': stem + 'ю', 'dat': stem + dat, 'ins': stem + 'ей', 'gen': stem + 'и'}[case]
        if end == 'а':
            gen = stem + ('и' if stem[-1] in 'гкхжшчщ' else 'ы')
            return {'acc': stem + 'у', 'dat': stem + 'е', 'ins': stem + 'ой', 'gen': gen}[case]
        return name        # Асель, Айгерим: not declined in Russian
    if name.endswith('й'):
        stem = name[:-1]
        return {'acc': stem + 'я', 'dat': stem + 'ю', 'ins': stem + 'ем', 'gen': stem + 'я'}[case]
    if name.endswith('ь'):
        stem = name[:-1]
        return {'acc': stem + 'я', 'dat': stem + 'ю', 'ins': stem + 'ем', 'gen': stem + 'я'}[case]
    if name.endswith('а'):
        stem = name[:-1]
        return {'acc': stem + 'у', 'dat': stem + 'е', 'ins': stem + 'ой', 'gen': stem + 'ы'}[case]
    ins = 'ем' if name[-1] in 'жшчщц' else 'ом'
    return {'acc': name + 'а', 'dat': name + 'у', 'ins': name + ins, 'gen': name + 'а'}[case]


def ru_surname_case(s, case, female):
    if female:
        if s.endswith(('ова', 'ева', 'ина')):
            return {'acc': s[:-1] + 'у', 'dat': s[:-1] + 'ой', 'ins': s[:-1] + 'ой',
                    'gen': s[:-1] + 'ой'}[case]
        return s
    if s.endswith(('ов', 'ев', 'ин')):
        return {'acc': s + 'а', 'dat': s + 'у', 'ins': s + 'ым', 'gen': s + 'а'}[case]
    if s.endswith(('ко', 'ли', 'ен', 'ай', 'ой')):
        return s
    return ru_case(s, case, False)


def feminine(s):
    if s.endswith(('ов', 'ев', 'ин')):
        return s + 'а'
    return s


def patronymic(father, female):
    """Иван -> Иванович/Ивановна, Сергей -> Сергеевич, Игорь -> Игоревич, Павел -> Павлович,
    Евгений -> Евгеньевич, Дмитрий -> Дмитриевич."""
    f = {'Павел': 'Павл', 'Лев': 'Льв', 'Пётр': 'Петр', 'Евгений': 'Евгеньй'}.get(father, father)
    if f.endswith('ий'):
        return f[:-2] + ('иевна' if female else 'иевич')
    if f.endswith(('й', 'ь')):
        return f[:-1] + ('евна' if female else 'евич')
    if f.endswith('а'):
        return f[:-1] + ('ична' if female else 'ич')
    if f[-1] in 'жшчщц':
        return f + ('евна' if female else 'евич')
    return f + ('овна' if female else 'ович')


class Filler:
    def __init__(self, rng):
        self.rng = rng

    def name(self, line, slot, mod, kz):
        r = self.rng
        if slot == 'fm':
            v = r.choice(KK_M if kz else (KZ_M + RU_M if r.random() < 0.5 else KZ_M))
            female = False
        elif slot == 'ff':
            v = r.choice(KK_F if kz else (KZ_F + RU_F if r.random() < 0.5 else KZ_F))
            female = True
        elif slot == 'sm':
            v = r.choice(SUR_M + SUR_X)
            female = False
        elif slot == 'sf':
            v = feminine(r.choice(SUR_M + SUR_X))
            female = True
        elif slot == 'pm':
            v = patronymic(r.choice(RU_M + ['Нурлан', 'Марат', 'Серик', 'Ерлан', 'Канат']), False)
            female = False
        elif slot == 'pf':
            v = patronymic(r.choice(RU_M + ['Нурлан', 'Марат', 'Серик', 'Ерлан', 'Канат']), True)
            female = True
        elif slot == 'ulm':
            v = r.choice(KK_M + KZ_M) + r.choice(['ұлы', 'улы', 'ұлы'])
            female = False
        elif slot == 'kzf':
            v = r.choice(KK_M + KZ_M) + r.choice(['қызы', 'кызы', 'қызы'])
            female = True
        elif slot == 'fml':
            v, female = r.choice(LAT_M), False
        elif slot == 'ffl':
            v, female = r.choice(LAT_F), True
        elif slot == 'sml':
            v, female = r.choice(LAT_SM), False
        elif slot == 'sfl':
            v, female = r.choice(LAT_SM) + 'a', True
        elif slot == 'fe':
            v, female = r.choice(EN_M + EN_F), False
        elif slot == 'fem':
            v, female = r.choice(EN_M), False
        elif slot == 'fef':
            v, female = r.choice(EN_F), True
        elif slot == 'se':
            v, female = r.choice(EN_S), False
        elif slot in ('sr', 'srf'):
            v, female = r.choice(SUR_R), slot == 'srf'
        elif slot in ('kzsr', 'kzsrf'):
            v, female = r.choice(SUR_K), slot == 'kzsrf'
        elif slot == 'kzsrl':
            v, female = r.choice(SUR_L), False
        else:
            raise KeyError(slot)
        line.names.append((slot, v))
        if mod in ('acc', 'dat', 'ins', 'gen'):
            v = ru_surname_case(v, mod, female) if slot in ('sm', 'sf') else ru_case(v, mod, female)
        elif mod in ('kdat', 'kgen', 'kins', 'kacc', 'kloc', 'kabl', 'kposs'):
            v = kk_suffix(v, mod)
        elif mod == 'low':
            v = v.lower()
        elif mod == 'up':
            v = v.upper()
        elif mod:
            raise KeyError(mod)
        return line.ent('NAME', v)

    def fill(self, line, slot):
        r = self.rng
        kz = False
        if slot.startswith('kz:'):
            kz, slot = True, slot[3:]
        slot, _, mod = slot.partition(':')
        if slot in ('fm', 'ff', 'sm', 'sf', 'pm', 'pf', 'ulm', 'kzf', 'fml', 'ffl', 'sml',
                    'sfl', 'fe', 'fem', 'fef', 'se', 'sr', 'srf', 'kzsr', 'kzsrf', 'kzsrl'):
            return self.name(line, slot, mod, kz)
        if slot == 'ph':
            code, num = mobile(r)
            line.phones.append('+7' + code + num)
            return line.ent('PHONE', r.choice(phone_forms(code, num)))
        if slot in ('phs', 'phg'):
            # the same number in a spaced and in a glued form (conversations)
            code, num = mobile(r)
            line.phones.append('+7' + code + num)
            forms = phone_forms(code, num)
            glued = [f for f in forms if ' ' not in f and '-' not in f]
            spaced = [f for f in forms if ' ' in f]
            return line.ent('PHONE', r.choice(glued if slot == 'phg' else spaced))
        if slot == 'badid':
            # a mistyped IIN/BIN after its cue: personal, though the check digit fails
            v = nb.bad12(r)
            return line.ent('ID', r.choice([v, v, nb.group(v, [6, 6]), nb.group(v, [4, 4, 4])]))
        if slot == 'phl':
            return line.ent('PHONE', landline(r))
        if slot == 'phi':
            return line.ent('PHONE', r.choice(FOREIGN)(r))
        if slot == 'em':
            e = r.choice(EMAIL_USERS) + '@' + r.choice(EMAIL_DOMAINS)
            if r.random() < 0.15:
                e = e.capitalize()
            line.emails.append(e)
            return line.ent('EMAIL', e)
        if slot == 'iin':
            v = nb.iin(r)
            return line.ent('IIN', r.choice([v, v, v, nb.group(v, [6, 6]),
                                             nb.group(v, [3, 3, 3, 3]), nb.group(v, [4, 4, 4])]))
        if slot == 'bin':
            v = nb.bin_(r)
            return line.ent('BIN', r.choice([v, v, nb.group(v, [6, 6]), nb.group(v, [4, 4, 4])]))
        if slot == 'card':
            v = nb.card(r)
            n = len(v)
            if n == 15:
                forms = [v, nb.group(v, [4, 6, 5]), nb.group(v, [4, 6, 5], '-')]
            else:
                forms = [v, nb.group4(v), nb.group4(v, '-'), nb.group4(v)]
            return line.ent('CARD', r.choice(forms))
        if slot in ('iban', 'ibanx'):
            v = nb.iban(r, 'KZ' if slot == 'iban' else r.choice(['DE', 'GB', 'TR', 'AE', 'FR']))
            v = r.choice([v, v, nb.group4(v)])
            return line.ent('IBAN', v.lower() if mod == 'low' else v)
        # not personal data
        if slot == 'price':
            n = r.choice([r.randint(5, 999) * 100, r.randint(1, 300) * 1000, r.randint(100, 99999)])
            s = '{:,}'.format(n).replace(',', r.choice([' ', '', '.'])) if n >= 1000 else str(n)
            return s + r.choice([' тг', 'тг', ' тенге', '₸', ' ₸', ' tg', ' kzt', ' KZT', 'т'])
        if slot == 'amount':
            return str(r.choice([r.randint(1, 99) * 1000, r.randint(1, 999) * 500,
                                 r.randint(10000, 2500000)]))
        if slot == 'order':
            return str(r.randint(100000, 9999999))
        if slot == 'trk':
            return r.choice(['KZ-TRK %04d %04d %02d' % (r.randint(0, 9999), r.randint(0, 9999),
                                                         r.randint(0, 99)),
                             'RB%09dKZ' % r.randint(0, 999999999),
                             'LP%011d' % r.randint(0, 99999999999),
                             'CDEK-%08d' % r.randint(0, 99999999)])
        if slot == 'date':
            d, m = r.randint(1, 28), r.randint(1, 12)
            y = r.choice([2023, 2024, 2025, 2026])
            return r.choice(['%02d.%02d.%d' % (d, m, y), '%02d.%02d' % (d, m),
                             '%d/%02d/%d' % (d, m, y), '%d-%02d-%02d' % (y, m, d),
                             '%02d.%02d.%02d' % (d, m, y % 100)])
        if slot == 'time':
            return r.choice(['%d:%02d' % (r.randint(8, 21), r.choice([0, 15, 30, 45])),
                             '%02d:%02d' % (r.randint(8, 21), r.choice([0, 10, 30, 50])),
                             '%d.%02d' % (r.randint(8, 21), r.choice([0, 30]))])
        if slot == 'bad12':
            return nb.bad12(r)
        if slot == 'noluhn':
            return nb.not_luhn(r, 16)
        if slot == 'code':
            return r.choice(['%04d' % r.randint(0, 9999), '%06d' % r.randint(0, 999999),
                             '%03d-%03d' % (r.randint(0, 999), r.randint(0, 999))])
        if slot == 'qty':
            return str(r.randint(1, 12))
        if slot == 'house':
            return r.choice(['%d' % r.randint(1, 250),
                             '%d/%d' % (r.randint(1, 99), r.randint(1, 9)),
                             '%dа' % r.randint(1, 99),
                             '%d кв %d' % (r.randint(1, 150), r.randint(1, 300))])
        if slot == 'city':
            return r.choice(CITIES)
        if slot == 'ini':
            c = r.choice('АБВГДЕЖЗИКЛМНОПРСТУШЫAEKMNST')
            return c + r.choice(['.', '', '.'])
        if slot == 'street':
            return r.choice(STREETS)
        if slot == 'kzstreet':
            return r.choice(KZ_STREETS)
        if slot == 'enstreet':
            return r.choice(EN_STREETS)
        if slot == 'model':
            return r.choice(MODELS)
        if slot == 'year':
            return str(r.randint(2008, 2024))
        raise KeyError(slot)


SLOT = re.compile(r'\{([a-z0-9:]+)\}|\[\[([^\]]+)\]\]')


def render(filler, lang, kind, tmpl):
    line = Line()

    def sub(m):
        if m.group(2):
            return line.ent('NAME', m.group(2))
        return filler.fill(line, m.group(1))
    text = SLOT.sub(sub, tmpl)
    obj = {'text': text, 'lang': lang}
    if kind == 'K':
        full = [v for s, v in line.names if s in ('fm', 'ff', 'fml', 'ffl')][:1]
        sur = [v for s, v in line.names if s in ('sm', 'sf', 'sml', 'sfl')][:1]
        known = {'names': [' '.join(full + sur)] if full or sur else [],
                 'phones': line.phones[:1], 'emails': line.emails[:1]}
        obj['known'] = known
    obj['entities'] = line.ents
    if kind == 'N' and line.ents:
        raise ValueError('N template with personal data: ' + tmpl)
    if kind in ('P', 'K') and not line.ents:
        raise ValueError('P template without personal data: ' + tmpl)
    return obj


def check_boundaries(obj):
    """Every occurrence of a labelled value must stand on its own (not inside a longer word)."""
    t = obj['text']
    spans = []
    for e in obj['entities']:
        i = t.find(e['value'])
        while i >= 0:
            spans.append((i, i + len(e['value']), e['value']))
            i = t.find(e['value'], i + 1)

    def inside_other(i, v):
        return any(a <= i and i + len(v) <= b and w != v for a, b, w in spans)
    for e in obj['entities']:
        v = e['value']
        i = t.find(v)
        assert i >= 0, (v, t)
        while i >= 0:
            before = t[i - 1] if i else ' '
            after = t[i + len(v)] if i + len(v) < len(t) else ' '
            if inside_other(i, v):
                pass
            elif e['type'] == 'NAME' and (before.isalpha() or after.isalpha()):
                raise ValueError(f'{v!r} inside a word in {t!r}')
            if e['type'] != 'NAME' and (before.isalnum() or after.isdigit()):
                raise ValueError(f'{v!r} glued to a character in {t!r}')
            i = t.find(v, i + 1)


SEED = 20261202
# name: (templates, output, seed, renderings of each template)
SETS = {'corpus': ('templates.txt', 'corpus.jsonl', SEED, 1),
        'hard': ('hard_templates.txt', 'hard.jsonl', 20260416, 3)}


def build(templates, seed, reps_each):
    rng = random.Random(seed)
    filler = Filler(rng)
    out = []
    with open(os.path.join(HERE, templates), encoding='utf-8') as f:
        for n, raw in enumerate(f, 1):
            raw = raw.rstrip('\n')
            if not raw.strip() or raw.startswith('#'):
                continue
            lang, kind, rest = raw.split('|', 2)
            reps = 1
            if kind[1:]:
                reps = int(kind[1:])
                kind = kind[0]
            for _ in range(reps * reps_each):
                obj = render(filler, lang, kind, rest)
                check_boundaries(obj)
                out.append(obj)
    return out


def main():
    ap = argparse.ArgumentParser(description='writes tests/anon/corpus.jsonl and hard.jsonl')
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--set', choices=sorted(SETS), action='append',
                    help='one of the corpora (default: both)')
    ap.add_argument('--seed', type=int)
    ap.add_argument('--out')
    a = ap.parse_args()
    names = a.set or sorted(SETS)
    if (a.out or a.seed is not None) and len(names) != 1:
        ap.error('--seed and --out need one --set')
    status = 0
    for name in names:
        templates, path, seed, reps_each = SETS[name]
        out = build(templates, seed if a.seed is None else a.seed, reps_each)
        text = ''.join(json.dumps(o, ensure_ascii=False) + '\n' for o in out)
        path = a.out or os.path.join(HERE, path)
        if a.check:
            with open(path, encoding='utf-8') as f:
                if f.read() != text:
                    print(f'{path} differs from what {templates} gives', file=sys.stderr)
                    status = 1
            continue
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        langs = {}
        for o in out:
            langs[o['lang']] = langs.get(o['lang'], 0) + 1
        clean = sum(1 for o in out if not o['entities'])
        print(f'{os.path.basename(path)}: {len(out)} lines {langs}, {clean} without personal data',
              file=sys.stderr)
    sys.exit(status)


if __name__ == '__main__':
    main()
