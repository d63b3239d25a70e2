"""The README's verification helper (the story's receiver) accepts what the
delivery worker signs, and refuses a changed body, a wrong secret and a
timestamp older than 5 minutes."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from ledger.integrations.delivery import sign

README = Path(__file__).resolve().parents[2] / "README.md"


def _helper() -> Any:
    section = README.read_text().split("## A first story with curl", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    namespace: dict[str, Any] = {}
    exec(block.replace("serve_forever()", "server_close()").replace("9000", "0"), namespace)
    return namespace["verified"]


def test_the_readme_helper_checks_the_signature_and_its_age() -> None:
    verified = _helper()
    body = b'{"position":7,"type":"CreditsCharged"}'
    now = int(time.time())
    assert verified("whsec_1", body, sign("whsec_1", body, now))
    assert not verified("whsec_1", body + b" ", sign("whsec_1", body, now))
    assert not verified("whsec_2", body, sign("whsec_1", body, now))
    assert not verified("whsec_1", body, sign("whsec_1", body, now - 301))
    assert not verified("whsec_1", body, "v1=abc")
