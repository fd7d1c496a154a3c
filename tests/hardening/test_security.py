"""Who may reach what, CSRF, the production settings, security headers, sign-in throttling
and the model files that only the site itself may have written."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audit.models import StrategyVersion
from clustering.model_store import (
    ModelFileError,
    file_sha256,
    model_load,
    model_save,
    storage_dir,
)
from clustering.models import Segment, TrainingRun
from clustering.tokens import api_token_create
from customers.models import Customer, ImportRecord
from purchases.models import PurchaseImport
from tests.campaigns.helpers import make_campaign
from tests.hardening.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = {"age": 30, "annual_income": 60, "spending_score": 50, "purchase_frequency": 20}
FORM = {k: str(v) for k, v in CUSTOMER.items()}
FEATURES = list(CUSTOMER)
RETRAIN = {
    "mode": "auto",
    "k_min": "2",
    "k_max": "10",
    "features": FEATURES,
    "missing": "exclude",
    "log_mode": "auto",
}


def named_urls(namespace: str) -> list[tuple[str, list[str]]]:
    """(name, path arguments) of every named URL of a namespace in the URLconf."""
    resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == namespace
    )
    return [
        (f"{namespace}:{p.name}", sorted(p.pattern.converters))
        for p in resolver.url_patterns
        if isinstance(p, URLPattern) and p.name
    ]


PAGES = (
    named_urls("purchases")
    + named_urls("clustering")
    + named_urls("customers")
    + named_urls("operations")
    + named_urls("campaigns")
    + named_urls("audit")
)
API = named_urls("api") + named_urls("campaigns_api")


def url_of(name: str, arguments: list[str], run: TrainingRun) -> str:
    values = {
        "run_id": run.id,
        "segment_id": run.clusters.first().segment_id,
        "customer_id": Customer.objects.order_by("pk").first().customer_id,
        "group_key": "champions",
        "customer_pk": Customer.objects.order_by("pk").first().pk,
    }
    if "schedule_id" in arguments:
        from operations.models import Schedule
        from operations.schedules import schedule_save

        values["schedule_id"] = schedule_save(schedule=Schedule(name="Monthly")).id
    if "job_id" in arguments:  # an order-log import
        values["job_id"] = PurchaseImport.objects.create(file_name="orders.txt").id
    if "record_id" in arguments:  # an import that could be undone
        values["record_id"] = ImportRecord.objects.create(file_name="customers.csv").id
    if "campaign_id" in arguments:
        values["campaign_id"] = make_campaign(run).id
    if "version_id" in arguments:
        values["version_id"] = StrategyVersion.objects.get(segment_id=values["segment_id"]).id
    return reverse(name, kwargs={a: values[a] for a in arguments})


def request_any(client: Client, url: str, **extra):
    """GET, or POST where the view takes only POST."""
    response = client.get(url, **extra)
    return client.post(url, **extra) if response.status_code == 405 else response


def test_the_urlconf_has_the_pages_this_file_checks():
    assert len(PAGES) >= 12 and len(API) == 9


@pytest.mark.parametrize("name, arguments", PAGES, ids=[n for n, _ in PAGES])
def test_every_page_sends_an_anonymous_visitor_to_sign_in(client, trained, name, arguments):
    url = url_of(name, arguments, trained)

    response = request_any(client, url)

    assert response.status_code == 302, (url, response.status_code)
    assert response.url.startswith(f"{reverse('login')}?next=")


@pytest.mark.parametrize("name, arguments", PAGES, ids=[n for n, _ in PAGES])
def test_every_page_refuses_a_signed_in_user_without_permission(
    client, trained, outsider, name, arguments
):
    client.force_login(outsider)

    response = request_any(client, url_of(name, arguments, trained))

    assert response.status_code == 403, (name, response.status_code)


MANAGER_ONLY = [
    "clustering:run_start",
    "clustering:run_activate",
    "customers:import",
    "customers:import_map",
    "customers:import_confirm",
    "customers:import_history",
    "customers:import_undo",
    "operations:overview",
    "operations:schedule_new",
    "operations:schedule_edit",
    "operations:schedule_delete",
    "operations:schedule_run_now",
    "operations:prune",
    "operations:predictions_export",
    "purchases:import",
    "purchases:import_check",
    "purchases:import_confirm",
    "purchases:import_status",
    "purchases:clv_start",
    "purchases:clv_activate",
]


@pytest.mark.parametrize("name", MANAGER_ONLY)
def test_a_marketer_may_not_retrain_activate_or_import(client, trained, marketer, name):
    client.force_login(marketer)
    arguments = dict(PAGES)[name]

    response = request_any(client, url_of(name, arguments, trained))

    assert response.status_code == 403


@pytest.mark.parametrize("name, arguments", API, ids=[n for n, _ in API])
def test_every_api_url_answers_an_anonymous_caller_401(client, trained, name, arguments):
    response = request_any(client, url_of(name, arguments, trained))

    assert response.status_code == 401
    assert "error" in response.json()


def test_a_signed_in_session_is_not_an_api_token(client, trained, manager):
    client.force_login(manager)

    assert client.get("/api/segments/").status_code == 401


ADMIN_PAGES = ["/admin/"] + [
    reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for model in admin.site._registry
]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_the_admin_sends_anyone_but_staff_to_its_sign_in(client, manager, url):
    assert client.get(url).url.startswith("/admin/login/")
    client.force_login(manager)  # signed in and a manager, but not staff

    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_the_admin_opens_for_a_superuser(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_superuser("root", password=PASSWORD))

    assert client.get(url).status_code == 200


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(manager) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    return client


def csrf_posts(run: TrainingRun) -> dict[str, tuple[str, dict]]:
    segment = run.clusters.first().segment
    upload = b"customer_id,age,annual_income,spending_score\nCSRF-1,30,50,50\n"
    return {
        "retrain": ("/runs/start/", RETRAIN),
        "predict": ("/predict/", FORM),
        "edit a segment": (
            f"/segments/{segment.id}/edit/",
            {"name": "Renamed", "description": "d", "actions_text": "Call them"},
        ),
        "activate a run": (f"/runs/{run.id}/activate/", {}),
        "import customers": (
            "/customers/import/",
            {"file": SimpleUploadedFile("c.csv", upload, content_type="text/csv")},
        ),
    }


CSRF_POSTS = ["retrain", "predict", "edit a segment", "activate a run", "import customers"]


@pytest.mark.parametrize("what", CSRF_POSTS)
def test_a_post_without_a_csrf_token_is_refused(csrf_client, trained, what):
    url, data = csrf_posts(trained)[what]
    csrf_client.get("/")  # the CSRF cookie is set, but the request does not send the token

    response = csrf_client.post(url, data, headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert Segment.objects.filter(name="Renamed").count() == 0


@pytest.mark.parametrize("what", CSRF_POSTS)
def test_a_post_with_the_csrf_token_in_the_htmx_header_is_accepted(csrf_client, trained, what):
    url, data = csrf_posts(trained)[what]
    csrf_client.get("/")
    token = csrf_client.cookies["csrftoken"].value

    response = csrf_client.post(url, data, headers={"HX-Request": "true", "X-CSRFToken": token})

    assert response.status_code in (200, 302), (what, response.status_code)
    if what == "edit a segment":
        assert Segment.objects.filter(name="Renamed").exists()


def test_a_post_with_a_wrong_csrf_token_is_refused(csrf_client, trained):
    csrf_client.get("/")

    response = csrf_client.post("/predict/", FORM, headers={"X-CSRFToken": "x" * 64})

    assert response.status_code == 403


def api_predict(client: Client, secret: str):
    return client.post(
        "/api/predict/",
        json.dumps(CUSTOMER),
        content_type="application/json",
        headers=bearer(secret),
    )


def test_the_api_needs_no_csrf_token(trained, marketer):
    client = Client(enforce_csrf_checks=True)
    secret = api_token_create(user=marketer, name="crm")[1]

    response = api_predict(client, secret)

    assert response.status_code == 200


# --- Production settings ------------------------------------------------------------------------


def deploy_check(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DJANGO_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "segments.example.com",
    }
    environment.pop("DJANGO_HTTPS", None)
    # The browser tests set this for the live server; production never does.
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    environment.update(env)
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_the_documented_production_settings(tmp_path):
    result = deploy_check(tmp_path, DJANGO_HTTPS="true")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_check_deploy_is_clean_by_default_without_debug(tmp_path):
    """Secure by default: without DJANGO_DEBUG the HTTPS settings are on, unasked."""
    result = deploy_check(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_check_deploy_fails_when_https_is_turned_off(tmp_path):
    """The check above means something: a plain-HTTP deployment has to say so, and the
    check then warns about what it gives up."""
    result = deploy_check(tmp_path, DJANGO_HTTPS="false")

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def settings_in_a_fresh_process(tmp_path, names: list[str], **env: str) -> dict:
    environment = {**os.environ, "DJANGO_VAR_DIR": str(tmp_path / "var"), **env}
    environment.pop("DJANGO_HTTPS", None)
    environment.update(env)
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    environment["DJANGO_SETTINGS_MODULE"] = "segmentation_site.settings"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


HTTPS_SETTINGS = ["SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]


def test_make_run_with_debug_stays_on_plain_http(tmp_path):
    """`make run` sets DJANGO_DEBUG=true: the laptop site is served on http://127.0.0.1."""
    values = settings_in_a_fresh_process(tmp_path, HTTPS_SETTINGS, DJANGO_DEBUG="true")

    assert values == dict.fromkeys(HTTPS_SETTINGS, False)


def test_without_debug_the_https_settings_are_on_unless_turned_off(tmp_path):
    secure = settings_in_a_fresh_process(tmp_path, HTTPS_SETTINGS, DJANGO_DEBUG="false")
    plain = settings_in_a_fresh_process(
        tmp_path, HTTPS_SETTINGS, DJANGO_DEBUG="false", DJANGO_HTTPS="false"
    )

    assert secure == dict.fromkeys(HTTPS_SETTINGS, True)
    assert plain == dict.fromkeys(HTTPS_SETTINGS, False)


# --- Headers ------------------------------------------------------------------------------------


def csp(response) -> dict[str, list[str]]:
    directives = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *values = directive.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/api/ping/"])
def test_every_response_carries_the_security_headers(client, marketer, url):
    client.force_login(marketer)

    response = client.get(url)

    policy = csp(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert "'unsafe-inline'" not in policy.get("style-src", [])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_scripts_the_policy_would_block(client, trained, marketer):
    client.force_login(marketer)

    html = client.get("/").content.decode()

    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts, "the dashboard has no scripts at all"
    for tag in scripts:  # each loads a file of the site, or is JSON data that never runs
        assert ' src="/static/' in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "an inline event handler"
    assert not re.search(r"<[^>]+\sstyle=\"[^\"]", html), "an inline style attribute"


@pytest.fixture
def https(settings):
    """DJANGO_HTTPS=true's settings, but with the redirect off so that tests can ask both ways."""
    settings.SECURE_SSL_REDIRECT = False
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


def test_hsts_is_sent_on_secure_requests_only(client, https):
    secure = client.get("/accounts/login/", secure=True)
    plain = client.get("/accounts/login/")

    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in plain


def test_behind_the_tls_proxy_a_request_counts_as_secure(client, https):
    https.SECURE_SSL_REDIRECT = True

    proxied = client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    plain = client.get("/accounts/login/")

    assert proxied.status_code == 200
    assert "Strict-Transport-Security" in proxied
    assert plain.status_code == 301
    assert plain.url.startswith("https://")


def test_the_session_and_csrf_cookies_are_secure_over_https(client, https, marketer):
    response = client.post(
        "/accounts/login/", {"username": "mia", "password": PASSWORD}, secure=True
    )

    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]
    assert response.cookies["sessionid"]["httponly"]
    assert response.cookies["csrftoken"]["secure"]


# --- Model files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_name",
    [
        "../x.joblib",
        "/etc/passwd",
        "run-1-0123456789abcdef.joblib/../../x.joblib",
        "run-1-0123456789ABCDEF.joblib",
        "run-1-0123456789abcdef.joblib\n",
        "",
    ],
)
def test_model_load_refuses_a_name_the_site_did_not_generate(tmp_path, file_name):
    with pytest.raises(ModelFileError, match="not a model file name we write"):
        model_load(file_name=file_name, sha256="0" * 64)


def test_model_load_refuses_a_file_outside_the_storage_even_with_its_hash(tmp_path):
    outside = tmp_path / "outside.joblib"
    joblib.dump({"not": "a model"}, outside)

    with pytest.raises(ModelFileError):
        model_load(file_name=f"../{outside.name}", sha256=file_sha256(outside))
    with pytest.raises(ModelFileError):
        model_load(file_name=str(outside), sha256=file_sha256(outside))


def test_model_load_refuses_a_tampered_file():
    stored = model_save(run_id=7, pipeline={"weights": [1, 2, 3]})
    path = storage_dir() / stored.file_name
    assert model_load(file_name=stored.file_name, sha256=stored.sha256) == {"weights": [1, 2, 3]}
    path.write_bytes(path.read_bytes() + b"\x00")

    with pytest.raises(ModelFileError, match="has been altered"):
        model_load(file_name=stored.file_name, sha256=stored.sha256)


def test_model_load_names_a_missing_file():
    with pytest.raises(ModelFileError, match="is missing"):
        model_load(file_name="run-1-0123456789abcdef.joblib", sha256="0" * 64)


def _another_runs_file(run: TrainingRun) -> str:
    return model_save(run_id=run.id + 1, pipeline={"evil": True}).file_name


REPOINTED = {
    "a path outside the storage": lambda run: "../../outside.joblib",
    "an absolute path": lambda run: "/etc/passwd",
    "another file of the storage": _another_runs_file,
    "a file that is gone": lambda run: "run-99-0123456789abcdef.joblib",
}


@pytest.mark.parametrize("repoint", REPOINTED.values(), ids=REPOINTED.keys())
def test_an_api_prediction_with_a_repointed_model_file_is_a_clear_503(
    client, trained, marketer, repoint
):
    TrainingRun.objects.filter(id=trained.id).update(model_file=repoint(trained))
    secret = api_token_create(user=marketer, name="crm")[1]

    response = api_predict(client, secret)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "model" in response.json()["error"]
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain form"])
def test_the_prediction_form_with_a_repointed_model_file_says_so(client, trained, marketer, htmx):
    TrainingRun.objects.filter(id=trained.id).update(model_file="../../outside.joblib")
    client.force_login(marketer)

    response = client.post("/predict/", FORM, headers={"HX-Request": "true"} if htmx else {})

    assert response.status_code == (200 if htmx else 503)  # htmx swaps only a 2xx answer
    html = response.content.decode()
    assert "The active model cannot be loaded" in html
    assert 'class="segment-name"' not in html
