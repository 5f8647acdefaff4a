"""The toxics configured on one proxy, and their application to its live links.

Upstream (client -> server) and downstream (server -> client) each keep a chain in
creation order. Every change is applied at once to every link of that direction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .gocompat import gojson
from .link import Link
from .stream import Direction
from .toxics import ResetPeerToxic, Toxic

_sequence = itertools.count()


@dataclass
class ToxicWrapper:
    """A configured toxic: its API fields plus the toxic's attributes."""

    name: str
    type: str
    stream: str
    """As the client sent it (matched case-insensitively, echoed as given)."""
    direction: Direction
    toxicity: float
    toxic: Toxic
    seq: int

    def to_json(self) -> str:
        return (f'{{"attributes":{gojson.marshal(self.toxic.attributes())},'
                f'"name":{gojson.marshal(self.name)},"type":{gojson.marshal(self.type)},'
                f'"stream":{gojson.marshal(self.stream)},'
                f'"toxicity":{gojson.format_float32(self.toxicity)}}}')


def new_wrapper(name: str, type_name: str, stream: str, direction: Direction, toxicity: float,
                toxic: Toxic) -> ToxicWrapper:
    return ToxicWrapper(name, type_name, stream, direction, toxicity, toxic, next(_sequence))


class ToxicCollection:
    def __init__(self) -> None:
        self._chains: dict[Direction, list[ToxicWrapper]] = {d: [] for d in Direction}
        self._links: dict[Direction, set[Link]] = {d: set() for d in Direction}

    def all(self) -> list[ToxicWrapper]:
        return self._chains[Direction.UPSTREAM] + self._chains[Direction.DOWNSTREAM]

    def chain(self, direction: Direction) -> list[ToxicWrapper]:
        return list(self._chains[direction])

    def find(self, name: str) -> ToxicWrapper | None:
        return next((wrapper for wrapper in self.all() if wrapper.name == name), None)

    def has_reset_peer(self, direction: Direction) -> bool:
        return any(isinstance(w.toxic, ResetPeerToxic) for w in self._chains[direction])

    def attach(self, direction: Direction, link: Link) -> None:
        self._links[direction].add(link)

    def detach(self, direction: Direction, link: Link) -> None:
        self._links[direction].discard(link)

    def add(self, wrapper: ToxicWrapper) -> None:
        self._chains[wrapper.direction].append(wrapper)
        for link in list(self._links[wrapper.direction]):
            link.add(wrapper)

    def update(self, wrapper: ToxicWrapper, toxic: Toxic, toxicity: float) -> None:
        wrapper.toxic = toxic
        wrapper.toxicity = toxicity
        for link in list(self._links[wrapper.direction]):
            link.update(wrapper)

    def remove(self, wrapper: ToxicWrapper) -> None:
        self._chains[wrapper.direction].remove(wrapper)
        for link in list(self._links[wrapper.direction]):
            link.remove(wrapper)

    def clear(self) -> None:
        for wrapper in self.all():
            self.remove(wrapper)
