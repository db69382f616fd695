"""The SMS packages the platform sells, managed at run time. Pure.

``config/sms_packages.yaml`` is the first offer; the platform then creates packages, changes
their price and retires them (the admin API, ``mall-notify sms package ...``), each change a
record of the compacted topic ``notify.sms.packages`` (key ``package/<id>``) that the admin API
and the commands follow. A saved package wins over the file's of the same id; a retired one is
sold no more but stays known. A purchase copies its package's messages and price when it is
ordered, so it keeps the package as it was, whatever changes later.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from pydantic import ValidationError

from streams.core.sms_quota import Package
from streams.core.sms_signatures import Refused


class PackageShelf(Mapping[str, Package]):
    """The packages on sale by id (retired ones left out), the file's under the saved ones."""

    def __init__(self, first_offer: Mapping[str, Package]) -> None:
        self._first = dict(first_offer)
        self._saved: dict[str, Package] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> int | str:
        kind, _, package_id = (key or b"").decode(errors="replace").partition("/")
        if kind != "package" or not package_id:
            return f"a packages record whose key is not package/<id>: {key!r}"
        if value is None:
            self._saved.pop(package_id, None)
            return 0
        try:
            package = Package.model_validate_json(value)
        except ValidationError as exc:
            return f"a packages record that is not a package ({str(exc).splitlines()[0]})"
        if package.id != package_id:
            return f"package {package.id} under the key of {package_id}"
        self._saved[package_id] = package
        return 0

    def every(self) -> list[Package]:
        """Every package known, retired ones too: the file's in its order, then the new ones."""
        return list((self._first | self._saved).values())

    def known(self, package_id: str) -> Package | None:
        return self._saved.get(package_id) or self._first.get(package_id)

    def __getitem__(self, package_id: str) -> Package:
        package = self.known(package_id)
        if package is None or package.retired:
            raise KeyError(package_id)
        return package

    def __iter__(self) -> Iterator[str]:
        return iter([p.id for p in self.every() if not p.retired])

    def __len__(self) -> int:
        return sum(1 for p in self.every() if not p.retired)


def package_record(package: Package) -> tuple[bytes, bytes]:
    return f"package/{package.id}".encode(), package.model_dump_json().encode()


def create(shelf: PackageShelf, draft: Package, now: datetime, who: str) -> Package:
    if shelf.known(draft.id) is not None:
        raise Refused(f"package {draft.id} exists (change its price, or retire it)")
    return draft.model_copy(update={"retired": False, "changed_at": now, "changed_by": who})


def change(
    shelf: PackageShelf,
    package_id: str,
    now: datetime,
    who: str,
    *,
    price_fen: int | None = None,
    name: str | None = None,
) -> Package:
    package = shelf.get(package_id)
    if package is None:
        raise Refused(f"no package {package_id} on sale")
    update: dict[str, object] = {"changed_at": now, "changed_by": who}
    if price_fen is not None:
        update["price_fen"] = price_fen
    if name is not None:
        update["name"] = name
    return Package.model_validate(package.model_dump() | update)


def retire(shelf: PackageShelf, package_id: str, now: datetime, who: str) -> Package:
    return change(shelf, package_id, now, who).model_copy(update={"retired": True})
