"""Names, addresses and the per-source customer records of the synthetic demo chain.

Part of :mod:`crm_analytics.datasets.demo` (see its docstring for the planted problems).
All strings are built with vectorised pyarrow kernels from the small embedded vocabularies below.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_analytics.datasets.demo.config import DemoConfig
from crm_analytics.datasets.demo.phones import valid_phones


def _words(text: str) -> tuple[str, ...]:
    """Comma-separated vocabulary as a tuple (keeps the embedded lists compact)."""
    return tuple(word.strip() for word in text.split(","))


FIRST_NAMES = _words(
    "Anna, Ben, Clara, David, Emma, Felix, Grace, Hugo, Isabel, Jack, Julia, Karl, Laura, Lucas, Maria, "
    "Marco, Nina, Oliver, Paula, Pierre, Rosa, Samuel, Sofia, Thomas, Ursula, Victor, Wendy, Xavier, "
    "Yara, Zoe, Amelia, Carlos, Chloé, Daniel, Elena, Finn, Hannah, Ivan, Jonas, Lena, Mia, Noah, Olivia, "
    "Pablo, Sarah, Tobias, Valentina, William, Aoife, Matteo, Inès, Lars"
)
LAST_NAMES = _words(
    "Smith, Jones, Taylor, Brown, Wilson, Robinson, Wright, Murphy, O'Brien, Kelly, Müller, Schmidt, "
    "Schneider, Fischer, Weber, Wagner, Becker, Hoffmann, Dubois, Martin, Bernard, Moreau, Laurent, "
    "Lefèvre, García, Fernández, López, Martínez, Sánchez, Romero, Rossi, Russo, Ferrari, Esposito, "
    "Bianchi, Ricci, de Vries, Jansen, Bakker, Visser, Peeters, Janssens, Novak, Horvat, Nielsen, Hansen, "
    "Silva, Santos, Gruber, Huber"
)
STREETS = _words(
    "High Street, Station Road, Church Lane, Park Avenue, Mill Road, Market Square, Linden Way, "
    "Harbour View, Castle Street, Garden Row, Bridge Street, Kingsway, Elm Grove, Meadow Close, River Walk, "
    "Orchard Road, Chestnut Avenue, Victoria Street, Queens Road, North Parade, Canal Side, Hill Crest, "
    "Beech Drive, Maple Court, Oak Terrace"
)
# (city, ISO country, phone format, postcode format, weight); '#' renders a digit, '@' a capital letter.
CITIES: tuple[tuple[str, str, str, str, float], ...] = (
    ("London", "GB", "+44 20 #### ####", "SW# #@@", 9.0),
    ("Manchester", "GB", "+44 161 ### ####", "M## #@@", 3.0),
    ("Edinburgh", "GB", "+44 131 ### ####", "EH# #@@", 2.0),
    ("Dublin", "IE", "+353 1 ### ####", "D## @#@#", 2.5),
    ("Berlin", "DE", "+49 30 ########", "1####", 5.0),
    ("Munich", "DE", "+49 89 #######", "8####", 3.5),
    ("Hamburg", "DE", "+49 40 #######", "2####", 3.0),
    ("Paris", "FR", "+33 1 ## ## ## ##", "750##", 6.0),
    ("Lyon", "FR", "+33 4 ## ## ## ##", "6900#", 2.0),
    ("Amsterdam", "NL", "+31 20 ### ####", "10## @@", 3.0),
    ("Rotterdam", "NL", "+31 10 ### ####", "30## @@", 1.5),
    ("Madrid", "ES", "+34 91 ### ## ##", "280##", 3.5),
    ("Barcelona", "ES", "+34 93 ### ## ##", "080##", 3.0),
    ("Rome", "IT", "+39 06 #### ####", "001##", 3.0),
    ("Milan", "IT", "+39 02 #### ####", "201##", 3.0),
    ("Vienna", "AT", "+43 1 ### ####", "1##0", 2.0),
    ("Brussels", "BE", "+32 2 ### ## ##", "1###", 1.5),
    ("Zurich", "CH", "+41 44 ### ## ##", "80##", 1.5),
    ("Copenhagen", "DK", "+45 ## ## ## ##", "1###", 1.2),
    ("Lisbon", "PT", "+351 21 ### ####", "1###-###", 1.3),
)
EMAIL_DOMAINS = _words(
    "example.com, example.org, example.net, mail.example, post.example, inbox.example, webmail.example, "
    "correo.example"
)
ALLERGIES = _words("dust, feathers, pollen, nuts, gluten, latex, dust;feathers, dust;pollen, nuts;gluten")
ACCESSIBILITY = _words("wheelchair access, step-free room, walk-in shower, hearing loop")
ROOM_PREFERENCES = _words(
    "high floor, quiet room, twin beds, king bed, away from elevator, extra pillows, high floor;quiet room, "
    "king bed;extra pillows, twin beds;high floor"
)
SOURCES: tuple[str, ...] = ("crm", "booking", "billing")
BIRTH_DATE_SHARE = {"crm": 0.85, "booking": 0.3, "billing": 0.1}  # share of records with a birth date
CONSENT_FLIP = 0.1  # chance a record's marketing_consent disagrees with the person's choice
LOYALTY_IN_BOOKING = 0.6  # share of loyalty members who quoted their loyalty id when booking
ACCESSIBILITY_SHARE = 0.03  # of CRM records
ROOM_PREFERENCE_SHARE = 0.25  # of CRM records
SERVICE_FACTS: tuple[str, ...] = ("allergies", "accessibility_needs", "room_preferences")


def text(arr: pa.Array) -> pd.Series:
    """A pandas ``str`` column backed by the pyarrow string array (nulls become NA)."""
    return pd.Series(arr, dtype="str")


def format_ids(prefix: str, numbers: np.ndarray, width: int = 7) -> pa.Array:
    """Zero-padded identifiers such as ``G0000042``."""
    digits = pc.utf8_lpad(pa.array(numbers, type=pa.int64()).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def id_width(count: int) -> int:
    """Digits needed to number ``count`` records, at least seven."""
    return max(7, len(str(count)))


def pick(values: Sequence[str], idx: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """``values[idx]`` as a string array, null where ``missing``."""
    return pc.take(pa.array(values, type=pa.string()), pa.array(idx, mask=missing))


def null_where(arr: pa.Array, missing: np.ndarray) -> pa.Array:
    """``arr`` with nulls where ``missing`` is true."""
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)


def to_datetime(start: np.datetime64, seconds: np.ndarray) -> np.ndarray:
    """Naive datetime64[ns] from seconds after ``start``."""
    return (start + seconds.astype("timedelta64[s]")).astype("datetime64[ns]")


def _ascii(name: str) -> str:
    """Lower-case ASCII form of a name for e-mail addresses."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def _typo_table(names: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All one-letter drops and adjacent swaps per name: (variants, first index per name, count per name)."""
    variants: list[str] = []
    offsets, counts = [], []
    for name in names:
        drops = {name[:i] + name[i + 1 :] for i in range(1, len(name))}
        swaps = {name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(1, len(name) - 1)}
        found = sorted((drops | swaps) - {name})
        offsets.append(len(variants))
        counts.append(len(found))
        variants.extend(found)
    return variants, np.array(offsets), np.array(counts)


def _render(rng: np.random.Generator, fmt: str, n: int) -> np.ndarray:
    """``n`` random strings following ``fmt`` ('#' digit, '@' capital letter) as a bytes array."""
    codes = np.empty((n, len(fmt)), dtype=np.uint8)
    for j, ch in enumerate(fmt.encode()):
        if ch == ord("#"):
            codes[:, j] = 48 + rng.integers(0, 10, n)
        elif ch == ord("@"):
            codes[:, j] = 65 + rng.integers(0, 26, n)
        else:
            codes[:, j] = ch
    return codes.view(f"S{len(fmt)}").ravel()


def _by_city(rng: np.random.Generator, city: np.ndarray, formats: Sequence[str]) -> pa.Array:
    """Render each entry's city format (``formats[city]``, see :data:`CITIES`)."""
    return pa.array(_render_by_city(rng, city, formats)).cast(pa.string())


def _render_by_city(rng: np.random.Generator, city: np.ndarray, formats: Sequence[str]) -> np.ndarray:
    """:func:`_by_city` as a fixed-width bytes array."""
    out = np.zeros(len(city), dtype=f"S{max(map(len, formats))}")
    for c, fmt in enumerate(formats):
        rows = np.flatnonzero(city == c)
        out[rows] = _render(rng, fmt, len(rows))
    return out


@dataclass(frozen=True)
class Accounts:
    """Record numbers per source; arrays indexed by person unless noted."""

    booking: np.ndarray  # primary booking account number
    dup_person: np.ndarray  # persons with a second booking account
    dup_booking: np.ndarray  # account number of that second account (aligned with dup_person)
    crm_person: np.ndarray  # persons with a CRM record
    crm: np.ndarray  # CRM record number (aligned with crm_person)
    loyalty: np.ndarray  # loyalty number (aligned with crm_person)
    billing: np.ndarray  # billing account number


def draw_accounts(rng: np.random.Generator, n: int, duplicate_rate: float, crm_rate: float) -> Accounts:
    """Decide who has which records and number them in shuffled order (ids carry no person index)."""
    dup_person = np.flatnonzero(rng.random(n) < duplicate_rate)
    crm_person = np.flatnonzero(rng.random(n) < crm_rate)
    booking_numbers = rng.permutation(n + len(dup_person)) + 1
    return Accounts(
        booking=booking_numbers[:n],
        dup_person=dup_person,
        dup_booking=booking_numbers[n:],
        crm_person=crm_person,
        crm=rng.permutation(len(crm_person)) + 1,
        loyalty=rng.permutation(len(crm_person)) + 1,
        billing=rng.permutation(n) + 1,
    )


@dataclass(frozen=True)
class _Person:
    """Person-level strings and facts shared by all of a person's records."""

    first: np.ndarray
    last: np.ndarray
    email: pa.Array
    phone: pa.Array
    street: pa.Array  # old address, then the new one for movers appended (see ``moved_row``)
    city: np.ndarray
    postcode: pa.Array
    moved_row: np.ndarray  # per person: row of the new address, -1 if not moved
    birth_date: np.ndarray
    consent: np.ndarray


def _draw_persons(rng: np.random.Generator, n: int, config: DemoConfig) -> _Person:
    """Names, contact details, old and (for movers) new addresses, birth dates and consent per person."""
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    local = pc.binary_join_element_wise(
        pick([_ascii(f) for f in FIRST_NAMES], first),
        ".",
        pick([_ascii(s) for s in LAST_NAMES], last),
        pc.cast(pa.array(rng.integers(1, 10_000, n)), pa.string()),
        "",
    )
    domain = pick(EMAIL_DOMAINS, rng.integers(0, len(EMAIL_DOMAINS), n))
    email = pc.binary_join_element_wise(local, domain, "@")
    weights = np.array([c[4] for c in CITIES])
    home = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    moved = np.flatnonzero(rng.random(n) < config.moved_rate)
    elsewhere = rng.choice(len(CITIES), size=len(moved), p=weights / weights.sum())
    new_city = np.where(rng.random(len(moved)) < 0.5, home[moved], elsewhere)
    city = np.concatenate([home, new_city])
    street = pc.binary_join_element_wise(
        pc.cast(pa.array(rng.integers(1, 200, len(city))), pa.string()),
        pick(STREETS, rng.integers(0, len(STREETS), len(city))),
        " ",
    )
    moved_row = np.full(n, -1)
    moved_row[moved] = n + np.arange(len(moved))
    age_s = rng.integers(18 * 365, 85 * 365, n) * 86_400
    return _Person(
        first=first,
        last=last,
        email=email,
        phone=valid_phones(_render_by_city(rng, home, [c[2] for c in CITIES]), home, [c[2] for c in CITIES]),
        street=street,
        city=city,
        postcode=_by_city(rng, city, [c[3] for c in CITIES]),
        moved_row=moved_row,
        birth_date=to_datetime(np.datetime64(config.start, "s"), -age_s),
        consent=rng.random(n) < 0.55,
    )


def build_customers(
    rng: np.random.Generator,
    accounts: Accounts,
    first_stay_s: np.ndarray,
    allergic: np.ndarray,
    config: DemoConfig,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Render the crm/booking/billing customer tables and the truth identity map.

    ``first_stay_s`` is each person's first booking in seconds after ``config.start``. Each record has
    up to two versions (see :func:`_with_first_versions`); the identity map has one row per record.
    """
    n = len(first_stay_s)
    people = _draw_persons(rng, n, config)
    start = np.datetime64(config.start, "s")
    last_s = ((config.end - config.start).days + 1) * 86_400 - 1
    span = last_s - first_stay_s
    moved = people.moved_row >= 0
    moved_s = first_stay_s + ((0.5 + 0.5 * rng.random(n)) * span).astype(np.int64)
    typo_person = rng.random(n) < config.typo_rate
    typo_source = rng.integers(0, 3, n)  # crm, booking, billing; CRM typos fall back to booking below
    in_crm = np.zeros(n, dtype=bool)
    in_crm[accounts.crm_person] = True
    typo_source[(typo_source == 0) & ~in_crm] = 1
    typo_last = rng.random(n) < 0.5
    first_var, first_off, first_cnt = _typo_table(FIRST_NAMES)
    last_var, last_off, last_cnt = _typo_table(LAST_NAMES)
    first_typo = first_off[people.first] + (rng.random(n) * first_cnt[people.first]).astype(np.int64)
    last_typo = last_off[people.last] + (rng.random(n) * last_cnt[people.last]).astype(np.int64)

    specs = {
        "crm": (accounts.crm_person, format_ids("C", accounts.crm, id_width(len(accounts.crm)))),
        "booking": (
            np.concatenate([np.arange(n), accounts.dup_person]),
            format_ids(
                "G",
                np.concatenate([accounts.booking, accounts.dup_booking]),
                id_width(n + len(accounts.dup_person)),
            ),
        ),
        "billing": (np.arange(n), format_ids("A", accounts.billing, id_width(n))),
    }
    loyalty = np.full(n, -1)
    loyalty[accounts.crm_person] = accounts.loyalty
    tables: dict[str, pd.DataFrame] = {}
    identities = []
    for s, (source, (pid, ids)) in enumerate(specs.items()):
        m = len(pid)
        dup = np.arange(m) >= n if source == "booking" else np.zeros(m, dtype=bool)
        typo = typo_person[pid] & (typo_source[pid] == s) & ~dup
        first_idx = np.where(typo & ~typo_last[pid], len(FIRST_NAMES) + first_typo[pid], people.first[pid])
        last_idx = np.where(typo & typo_last[pid], len(LAST_NAMES) + last_typo[pid], people.last[pid])
        addr = np.where((source == "billing") & moved[pid], people.moved_row[pid], pid)
        email = pc.take(people.email, pa.array(pid))
        phone = pc.take(people.phone, pa.array(pid))
        if source == "booking":
            ota_email = pc.binary_join_element_wise(
                pick([_ascii(f) for f in FIRST_NAMES], people.first[pid]),
                pc.cast(pa.array(rng.integers(100_000, 1_000_000, m)), pa.string()),
                "",
            )
            relay = pc.binary_join_element_wise(ota_email, "guest.ota-relay.example", "@")
            email = pc.if_else(pa.array(dup), relay, email)
            email = null_where(email, rng.random(m) < config.missing_email_rate)
            phone = null_where(phone, dup & (rng.random(m) < 0.5))
        elif source == "billing":
            phone = pc.replace_substring(phone, " ", "")
        first = first_stay_s[pid]
        updated = first + (rng.random(m) * span[pid]).astype(np.int64)
        before_move = first + (rng.random(m) * (moved_s[pid] - first)).astype(np.int64)
        updated = np.where(moved[pid], moved_s[pid] if source == "billing" else before_move, updated)
        consent = people.consent[pid] ^ (rng.random(m) < CONSENT_FLIP)
        has_birth = rng.random(m) < BIRTH_DATE_SHARE[source]
        if source == "crm":
            loyalty_missing = np.zeros(m, dtype=bool)
            service = _service_facts(rng, allergic[pid])
        else:
            quoted = (rng.random(m) < LOYALTY_IN_BOOKING) & (source == "booking")
            loyalty_missing = (loyalty[pid] < 0) | dup | ~quoted
            service = {k: pa.nulls(m, pa.string()) for k in SERVICE_FACTS}
        loyalty_ids = format_ids("L", np.maximum(loyalty[pid], 0), id_width(len(accounts.loyalty)))
        frame = pd.DataFrame(
            {
                "source": text(pa.array(np.full(m, source))),
                "source_customer_id": text(ids),
                "first_name": text(pick(FIRST_NAMES + tuple(first_var), first_idx)),
                "last_name": text(pick(LAST_NAMES + tuple(last_var), last_idx)),
                "email": text(email),
                "phone": text(phone),
                "street": text(pc.take(people.street, pa.array(addr))),
                "city": text(pick([c[0] for c in CITIES], people.city[addr])),
                "postcode": text(pc.take(people.postcode, pa.array(addr))),
                "country": text(pick([c[1] for c in CITIES], people.city[addr])),
                "birth_date": np.where(has_birth, people.birth_date[pid], np.datetime64("NaT", "ns")),
                "updated_at": to_datetime(start, updated),
                "marketing_consent": consent,
                "loyalty_id": text(null_where(loyalty_ids, loyalty_missing)),
                **{k: text(v) for k, v in service.items()},
            }
        )
        tables[source] = _with_first_versions(frame, people, pid, first, start)
        identities.append(
            pd.DataFrame(
                {
                    "source": frame["source"],
                    "source_customer_id": frame["source_customer_id"],
                    "person_id": text(format_ids("P", pid + 1, id_width(n))),
                }
            )
        )
    return tables, pd.concat(identities, ignore_index=True)


def _with_first_versions(
    frame: pd.DataFrame, people: _Person, pid: np.ndarray, first: np.ndarray, start: np.datetime64
) -> pd.DataFrame:
    """Add each record's first version, created at the person's first booking (``first``, seconds after
    ``start``) with the old address, before its last update at ``updated_at``; records last updated in
    that same second have one version. Versions follow each other, record by record."""
    created = np.flatnonzero(frame["updated_at"].to_numpy() > to_datetime(start, first))
    old = pa.array(pid[created])
    versions = frame.iloc[created].reset_index(drop=True)
    versions["street"] = text(pc.take(people.street, old))
    versions["city"] = text(pick([c[0] for c in CITIES], people.city[pid[created]]))
    versions["postcode"] = text(pc.take(people.postcode, old))
    versions["country"] = text(pick([c[1] for c in CITIES], people.city[pid[created]]))
    versions["updated_at"] = to_datetime(start, first[created])
    both = pd.concat([versions.set_axis(created), frame])
    return both.sort_index(kind="stable").reset_index(drop=True)


def _service_facts(rng: np.random.Generator, allergic: np.ndarray) -> dict[str, pa.Array]:
    """CRM-only service facts: allergies (for allergic guests), accessibility needs, room preferences."""
    m = len(allergic)
    return {
        "allergies": pick(ALLERGIES, rng.integers(0, len(ALLERGIES), m), ~allergic),
        "accessibility_needs": pick(
            ACCESSIBILITY, rng.integers(0, len(ACCESSIBILITY), m), rng.random(m) >= ACCESSIBILITY_SHARE
        ),
        "room_preferences": pick(
            ROOM_PREFERENCES,
            rng.integers(0, len(ROOM_PREFERENCES), m),
            rng.random(m) >= ROOM_PREFERENCE_SHARE,
        ),
    }
