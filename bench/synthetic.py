"""Synthetic campaign files: realistic mixes of DDDs, formats, due dates, consent and outcomes.

    python -m bench.synthetic OUT.csv --rows 1000000 [--seed 7] [--today 2026-11-23]

The last digit of each number picks its sandbox outcome (see dialer/telephony/sandbox.py).
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

DDDS = [
    "11",
    "11",
    "11",
    "12",
    "13",
    "19",
    "21",
    "21",
    "24",
    "27",
    "31",
    "31",
    "41",
    "47",
    "48",
    "51",
    "61",
    "62",
    "65",
    "67",
    "68",
    "69",
    "71",
    "79",
    "81",
    "81",
    "82",
    "85",
    "86",
    "91",
    "92",
    "95",
    "97",
    "98",
]
FIRST = [
    "Maria",
    "José",
    "Ana",
    "João",
    "Antônio",
    "Francisca",
    "Carlos",
    "Paulo",
    "Lucas",
    "Luiza",
    "Mariana",
    "Pedro",
    "Juliana",
    "Marcos",
    "Fernanda",
    "Rafael",
    "Aline",
    "Bruno",
    "Camila",
    "Diego",
]
LAST = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Araújo",
    "Conceição",
]
HEADER = (
    "account_id;name;phone;due_date;amount;payment_method;phone_type;consent_voice;consent_sms;"
    "verify_birth_year\n"
)


def rows(n: int, seed: int, today: date, spread: tuple[int, int] = (-12, 40)):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    account = 0
    i = 0
    while i < n:
        account += 1
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        due = today - timedelta(days=rng.randint(*spread))
        amount = f"{rng.randint(30, 5000)},{rng.randint(0, 99):02d}"
        method = rng.choices(["boleto", "card", "crediario"], [6, 2, 2])[0]
        year = rng.randint(1950, 2004)
        for _ in range(2 if rng.random() < 0.15 else 1):
            if i >= n:
                break
            ddd = rng.choice(DDDS)
            number = f"9{rng.randint(1000, 9999)}{rng.randint(0, 9999):04d}"
            phone = rng.choice(
                [f"({ddd}) {number[:5]}-{number[5:]}", f"{ddd}{number}", f"+55 {ddd} {number}"]
            )
            cv = "sim" if rng.random() < 0.92 else "não"
            cs = "sim" if rng.random() < 0.96 else "não"
            yield f"C{account:07d};{name};{phone};{due:%d/%m/%Y};{amount};{method};mobile;{cv};{cs};{year}\n"
            i += 1


def write(path: Path, n: int, seed: int = 7, today: date = date(2026, 11, 23)) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for line in rows(n, seed, today):
            fh.write(line)
    return path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--today", default="2026-11-23")
    a = p.parse_args()
    write(Path(a.out), a.rows, a.seed, date.fromisoformat(a.today))


if __name__ == "__main__":
    main()
