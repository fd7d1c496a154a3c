"""The import's row checks: whole chunks are checked at once, and a row the fast checks
cannot vouch for goes to the row-by-row parser, so the purchases and the row report are
the same whatever the path and wherever the chunks end."""

from __future__ import annotations

import io
import threading
from datetime import date, time

import pytest

from customers.csv_format import CsvFormatError, RowError
from customers.models import Customer
from purchases import services
from purchases.models import Purchase
from purchases.services import TransactionOptions, transactions_import

pytestmark = pytest.mark.django_db

ISO = "date is not a date in the format yyyy-mm-dd (2024-03-05, with or without a time)"
HIDDEN = "{} contains a control or text-direction character"
LOG_COLUMNS = ["customer_id", "date", "quantity", "amount"]
# Good rows, rows only the per-row parser reads (an apostrophe-guarded ID, a currency sign,
# single-digit months, a number of 40 digits, a no-break space in an ID), spaces around
# values, blank lines, and bad rows of every kind.
MIXED = (
    "Customer,Date,Amount,Quantity,Order ID,Product\n"
    "a,2024-03-05,10.50,1,O-1,Tea\n"
    "\n"
    'b,2024-03-05 12:30,-4.25,,O-2,"Tea, green"\n'
    "c,2024-03-06T08:15:30,$7,2.0,-,Cake\n"
    "'=d,2024-3-7,.5,NA,,\n"
    "Zoë,2024-03-08,+3,3,O-3,Scone\n"
    ",,,,,\n"
    "e,2024-02-30,5,1,O-4,Tea\n"
    "f,2024-13-01,5,1,O-5,Tea\n"
    " ,2024-03-09,abc,1,O-6,Tea\n"
    "g,2024-03-09,,2.5,O-7,Tea\n"
    "h,2024-03-09,1e3,1,O-8,Tea,extra\n"
    '"i\x07",2024-03-09,inf,1,' + "X" * 65 + ",Tea\n"
    "j,2024-03-10 25:00,nan,1,O-9,Tea\n"
    "k ,  2024-03-11  ,  12.00 , 1 , O-10 , Jam \n"
    'l,2024-03-12,5.,0001,O-11,"Say ""hi"""\n'
    "m,2024-03-12 00:00,1" + "0" * 39 + ",1,O-12,Tea\n"
    "n,2024-03-12 23:59:59,0.1,1000001,O-13,Tea\n"
    "o,2024-03-12 23:59:60,0.1,1,O-14,Tea\n"
    "p,2024-02-29,-0.10,-3,O-15,Tea\n"
    "'=q,2024-03-13,7,1,O-16,Tea\n"
    'r,2024-03-13,1.2.3,"12,5",O-17,Tea\n'
    "s\u00a0t,2024-03-13,1,1,O-18,Tea\n"
    "u\x07v,2024-03-13,1,1,O-19,Tea\n"
    "w,2024-03-13,1,1,O-20,Tea\u202e\n"
)
MIXED_PURCHASES = [
    ("=d", date(2024, 3, 7), None, 0.5, None, "", ""),
    ("=q", date(2024, 3, 13), None, 7.0, 1, "O-16", "Tea"),
    ("Zoë", date(2024, 3, 8), None, 3.0, 3, "O-3", "Scone"),
    ("a", date(2024, 3, 5), None, 10.5, 1, "O-1", "Tea"),
    ("b", date(2024, 3, 5), time(12, 30), -4.25, None, "O-2", "Tea, green"),
    ("c", date(2024, 3, 6), time(8, 15, 30), 7.0, 2, "", "Cake"),
    ("k", date(2024, 3, 11), None, 12.0, 1, "O-10", "Jam"),
    ("l", date(2024, 3, 12), None, 5.0, 1, "O-11", 'Say "hi"'),
    ("m", date(2024, 3, 12), time(0, 0), 1e39, 1, "O-12", "Tea"),
    ("p", date(2024, 2, 29), None, -0.1, -3, "O-15", "Tea"),
    ("s\u00a0t", date(2024, 3, 13), None, 1.0, 1, "O-18", "Tea"),
]
MIXED_ERRORS = [
    RowError(9, "Date", "2024-02-30", ISO),
    RowError(10, "Date", "2024-13-01", ISO),
    RowError(11, "Customer", " ", "customer ID is empty; every customer needs an ID"),
    RowError(11, "Amount", "abc", "amount is not a number"),
    RowError(12, "Amount", "", "amount is empty"),
    RowError(12, "Quantity", "2.5", "quantity must be a whole number"),
    RowError(
        13, "", "h 2024-03-09 1e3 1 O-8 Tea extra", "has 7 values where the file has 6 columns"
    ),
    RowError(14, "Customer", "i\x07", HIDDEN.format("customer ID")),
    RowError(14, "Amount", "inf", "amount is not a number"),
    RowError(14, "Order ID", "X" * 65, "order ID is longer than 64 characters"),
    RowError(15, "Date", "2024-03-10 25:00", ISO),
    RowError(15, "Amount", "nan", "amount is empty"),
    RowError(19, "Quantity", "1000001", "quantity must be a whole number"),
    RowError(20, "Date", "2024-03-12 23:59:60", ISO),
    RowError(23, "Amount", "1.2.3", "amount is not a number"),
    RowError(23, "Quantity", "12,5", "quantity is not a number"),
    RowError(25, "Customer", "u\x07v", HIDDEN.format("customer ID")),
    RowError(26, "Product", "Tea\u202e", HIDDEN.format("product")),
]


def stored() -> list[tuple]:
    fields = ("customer__customer_id", "date", "time", "amount", "quantity", "order_id", "product")
    return sorted(Purchase.objects.values_list(*fields), key=lambda row: (row[0], row[1]))


def load(text: str, **options):
    return transactions_import(
        stream=io.BytesIO(text.encode()), options=TransactionOptions(file_name="t", **options)
    )


@pytest.fixture(params=[3, None], ids=["chunks-of-3", "one-chunk"])
def chunk_rows(request, monkeypatch):
    """Chunks of three rows end inside every kind of row; the default holds the file."""
    if request.param:
        monkeypatch.setattr(services, "CHUNK_ROWS", request.param)


def test_a_mixed_file_gives_the_same_purchases_and_row_report_in_any_chunks(chunk_rows):
    report = load(MIXED, skip_invalid=True)

    assert report.errors == MIXED_ERRORS
    assert (report.rows_read, report.valid_rows, report.invalid_rows) == (23, 11, 12)
    assert (report.error_count, report.blank_lines) == (18, 2)
    assert report.written and report.purchases_added == 11 and report.customers_created == 11
    assert stored() == MIXED_PURCHASES


def test_a_dry_run_and_an_all_or_nothing_import_report_the_same_rows(chunk_rows):
    dry = load(MIXED, dry_run=True)
    refused = load(MIXED)

    for report in (dry, refused):
        assert report.errors == MIXED_ERRORS
        assert (report.rows_read, report.valid_rows, report.blank_lines) == (23, 11, 2)
        assert not report.written
    assert not Purchase.objects.exists()


def test_decimal_commas_and_day_first_dates_with_times(chunk_rows):
    text = (
        "Kunde;Datum;Betrag\n"
        "x;05-03-2024;12,50\n"
        "y;06-03-2024 14:05;1.234,5\n"
        "z;07-03-2024;1 234,5\n"
        "w;31-04-2024;3\n"
        "v;08-03-2024 09:10:11;-0,5\n"
    )
    report = load(
        text,
        column_names=["customer_id", "date", "amount"],
        header_row=True,
        date_format="dd-mm-yyyy",
        skip_invalid=True,
    )

    day_first = "date is not a date in the format dd-mm-yyyy (05-03-2024)"
    assert report.errors == [
        RowError(3, "Betrag", "1.234,5", "amount is not a number"),
        RowError(5, "Datum", "31-04-2024", day_first),
    ]
    assert stored() == [
        ("v", date(2024, 3, 8), time(9, 10, 11), -0.5, None, "", ""),
        ("x", date(2024, 3, 5), None, 12.5, None, "", ""),
        ("z", date(2024, 3, 7), None, 1234.5, None, "", ""),
    ]


def test_a_headerless_whitespace_log_with_tabs_blank_lines_and_a_short_row(chunk_rows):
    text = (
        "00001  19970101 1 11.77\n"
        "\n"
        "00002\t19970112 1 12,00\r\n"
        "00003 1997011 2 1\n"  # strptime reads seven digits as 1 January
        "00004 19970230 2 5\n"
        "00005 20240305 2\n"
        "   \n"
        "00006 00000101 1 1\n"
    )
    report = load(text, column_names=LOG_COLUMNS, skip_invalid=True)

    yyyymmdd = "date is not a date in the format yyyymmdd (20240305)"
    assert report.errors == [
        RowError(5, "date", "19970230", yyyymmdd),
        RowError(6, "", "00005 20240305 2", "has 3 values where the file has 4 columns"),
        RowError(8, "date", "00000101", yyyymmdd),
    ]
    assert report.blank_lines == 2
    assert stored() == [
        ("00001", date(1997, 1, 1), None, 11.77, 1, "", ""),
        ("00002", date(1997, 1, 12), None, 12.0, 1, "", ""),
        ("00003", date(1997, 1, 1), None, 1.0, 2, "", ""),
    ]


def test_thousands_of_rows_across_chunks_keep_their_values_and_row_numbers(monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 700)
    lines = []
    for i in range(3_000):
        amount = f"{i}.{i % 100:02d}" if i % 1_000 != 999 else "x"  # rows 1000, 2000, 3000
        lines.append(f"c{i % 250:03d} 2024{1 + i % 12:02d}{1 + i % 28:02d} {1 + i % 3} {amount}")
    report = load("\n".join(lines) + "\n", column_names=LOG_COLUMNS, skip_invalid=True)

    assert [(e.row, e.value) for e in report.errors] == [(1000, "x"), (2000, "x"), (3000, "x")]
    assert report.purchases_added == 2_997 and report.customers_created == 250
    total = sum(i + (i % 100) / 100 for i in range(3_000) if i % 1_000 != 999)
    assert sum(Purchase.objects.values_list("amount", flat=True)) == pytest.approx(total)
    last = Purchase.objects.get(customer__customer_id="c248", amount=2998.98)
    assert (last.date, last.quantity) == (date(2024, 11, 3), 2)  # row 2999: i = 2998


def test_a_quote_never_closed_in_a_later_chunk_stops_the_import_with_nothing_written(
    monkeypatch,
):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    text = (
        "customer,date,amount\n" + "a,2024-01-05,5\n" * 5 + 'b,2024-01-06,"6\n' + "c,2024-01-07,7\n"
    )

    with pytest.raises(CsvFormatError, match="line 7 has a quote that is never closed"):
        load(text)

    assert not Purchase.objects.exists() and not Customer.objects.exists()
    assert not [t for t in threading.enumerate() if t.name == "purchase-import-reader"]


def test_a_refusal_in_a_later_chunk_stops_the_reader_and_writes_nothing(monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    Customer.objects.create(customer_id="a")
    text = "customer,date,amount\n" + "a,2024-01-05,5\n" * 4 + "zz,2024-01-06,6\n" * 50

    with pytest.raises(CsvFormatError, match=r"customers that do not exist \(zz\)"):
        load(text, existing_only=True)

    assert not Purchase.objects.exists()
    assert not [t for t in threading.enumerate() if t.name == "purchase-import-reader"]
