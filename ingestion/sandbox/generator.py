"""Deterministic generator of IGDB v4 shaped records for the sandbox API server.

Why: the sandbox must serve any number of games that look like real API output (field presence,
array lengths, value ranges, unicode, sparse ids) without shipping real data, and every process
must produce exactly the same records for the same ``GeneratorSpec``.

Targets were measured on 500 real games and 3,973 popularity rows (igdb-samples). Game number i is
built only from ``(seed, i)`` (its own seeded Random; its id from a per-block Random), so no game
depends on earlier games' content. Deliberate differences from the real sample:
- keywords have a mean of ~20 (real: 57) and external_games ~8 (real: 18), to keep memory down;
- reference id arrays (genres, platforms, ...) are sorted (real platforms arrays are not);
- per-game child ids (cover, screenshots, websites, ...) are ``game_id * 32 + slot``: unique
  across games without shared state;
- slugs come from an injective name space of 262,144 names; only games past it and the rare
  special titles (Japanese, emoji) get IGDB's ``--<n>`` suffix, here the game id.
"""

from __future__ import annotations

import gc
import math
import random
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

REFERENCE_ENTITIES: tuple[str, ...] = (
    "platforms", "genres", "themes", "game_modes", "player_perspectives", "popularity_types",
)
DEFAULT_ANCHOR: int = 1_780_000_000  # epoch seconds; generated updated_at values lie in [anchor - 2 years, anchor]

_YEAR = 365 * 86_400
_DAY = 86_400
_EPOCH_1980 = 315_532_800
_ID_BLOCK, _ID_SPAN = 10, 13  # 10 game ids in every 13 consecutive integers: mean gap 1.3
_SLOTS = 32  # child-id slots per game (the longest child array is capped at this)


@dataclass(frozen=True)
class GeneratorSpec:
    """What to generate; equal specs give identical records in every process."""

    games: int = 2000
    seed: int = 42
    anchor: int = DEFAULT_ANCHOR

    def __post_init__(self) -> None:
        if self.games < 0:
            raise ValueError(f"games must be >= 0, got {self.games}")


# --- reference tables: (id, name, weight); weight = how often games in the sample use it ---
_GENRES = (
    (2, "Point-and-click", 14), (4, "Fighting", 9), (5, "Shooter", 198), (7, "Music", 1),
    (8, "Platform", 79), (9, "Puzzle", 89), (10, "Racing", 32), (11, "Real Time Strategy (RTS)", 11),
    (12, "Role-playing (RPG)", 148), (13, "Simulator", 40), (14, "Sport", 4), (15, "Strategy", 53),
    (16, "Turn-based strategy (TBS)", 21), (24, "Tactical", 24), (25, "Hack and slash/Beat 'em up", 35),
    (26, "Quiz/Trivia", 1), (30, "Pinball", 1), (31, "Adventure", 337), (32, "Indie", 65),
    (33, "Arcade", 17), (34, "Visual Novel", 1), (35, "Card & Board Game", 4), (36, "MOBA", 2),
)
_THEMES = (
    (1, "Action", 423), (17, "Fantasy", 201), (18, "Science fiction", 169), (19, "Horror", 89),
    (20, "Thriller", 27), (21, "Survival", 79), (22, "Historical", 73), (23, "Stealth", 106),
    (27, "Comedy", 52), (28, "Business", 3), (31, "Drama", 48), (32, "Non-fiction", 1),
    (33, "Sandbox", 67), (34, "Educational", 2), (35, "Kids", 23), (38, "Open world", 152),
    (39, "Warfare", 54), (40, "Party", 12), (41, "4X", 5), (42, "Erotic", 1), (43, "Mystery", 28),
    (44, "Romance", 9),
)
_GAME_MODES = (
    (1, "Single player", 487), (2, "Multiplayer", 230), (3, "Co-operative", 139),
    (4, "Split screen", 50), (5, "Massively Multiplayer Online (MMO)", 8), (6, "Battle Royale", 5),
)
_PERSPECTIVES = (
    (1, "First person", 164), (2, "Third person", 273), (3, "Bird view / Isometric", 90),
    (4, "Side view", 73), (5, "Text", 5), (6, "Auditory", 1), (7, "Virtual Reality", 10),
)
# (id, name, source, log10 mean, log10 sd, quantum or 0 for continuous, share of exact zeros)
# Values are shares (count / total), not counts: quantised types are whole multiples of one unit.
_POPULARITY_TYPES = (
    (1, "Visits", 121, -4.02, 0.46, 4.835613325e-06, 0.0), (2, "Want to Play", 121, -3.69, 0.36, 0.0, 0.0),
    (3, "Playing", 121, -3.55, 0.45, 8.958727144e-06, 0.0), (4, "Played", 121, -3.23, 0.23, 0.0, 0.0),
    (5, "24hr Peak Players", 1, -4.16, 0.99, 1.83214241e-07, 0.013),
    (6, "Postitive Reviews", 1, -3.39, 0.65, 0.0, 0.003),  # sic: IGDB's own spelling
    (7, "Negative Reviews", 1, -3.65, 0.65, 0.0, 0.003), (8, "Total Reviews", 1, -3.41, 0.64, 0.0, 0.003),
    (9, "Global Top Sellers", 1, -3.77, 0.21, 0.0, 0.0), (10, "Most Wishlisted Upcoming", 1, -3.8, 0.4, 0.0, 0.0),
    (34, "24hr Hours Watched", 14, -4.61, 1.03, 4.2174207e-08, 0.013),
)
_POP_BY_TYPE = {row[0]: row for row in _POPULARITY_TYPES}
# (id, name, abbreviation, generation, platform_family, weight); 0 = absent
_PLATFORMS = (
    (3, "Linux", "Linux", 0, 4, 103), (4, "Nintendo 64", "N64", 5, 5, 8), (5, "Wii", "Wii", 7, 5, 30),
    (6, "PC (Microsoft Windows)", "PC", 0, 0, 387), (7, "PlayStation", "PS1", 5, 1, 17),
    (8, "PlayStation 2", "PS2", 6, 1, 33), (9, "PlayStation 3", "PS3", 7, 1, 162),
    (11, "Xbox", "XBOX", 6, 2, 27), (12, "Xbox 360", "X360", 7, 2, 151), (13, "DOS", "DOS", 0, 0, 12),
    (14, "Mac", "Mac", 0, 0, 187), (18, "Nintendo Entertainment System", "NES", 3, 5, 6),
    (19, "Super Nintendo Entertainment System", "SNES", 4, 5, 10), (20, "Nintendo DS", "NDS", 7, 5, 4),
    (21, "Nintendo GameCube", "NGC", 6, 5, 17), (22, "Game Boy Color", "GBC", 5, 5, 4),
    (24, "Game Boy Advance", "GBA", 6, 5, 4), (34, "Android", "Android", 0, 4, 54),
    (37, "Nintendo 3DS", "3DS", 8, 5, 20), (38, "PlayStation Portable", "PSP", 7, 1, 14),
    (39, "iOS", "iOS", 0, 0, 70), (41, "Wii U", "WiiU", 8, 5, 42), (46, "PlayStation Vita", "Vita", 8, 1, 23),
    (48, "PlayStation 4", "PS4", 8, 1, 210), (49, "Xbox One", "XONE", 8, 2, 186),
    (52, "Arcade", "Arcade", 0, 0, 7), (130, "Nintendo Switch", "Switch", 9, 5, 105),
    (167, "PlayStation 5", "PS5", 9, 1, 76), (169, "Xbox Series X|S", "Series X|S", 9, 2, 67),
    (170, "Google Stadia", "Stadia", 0, 0, 40), (508, "Nintendo Switch 2", "Switch 2", 9, 5, 17),
)
_PLATFORM_COUNT = 220
_MAKERS = ("Atari Casio Epoch Bandai Tiger Philips Sharp Fujitsu Tandy Acorn Sinclair Mattel Coleco VTech "
           "Nokia Palm Amstrad Zeebo Hyperkin Tomy Oric Dragon Thomson Sord Luxor").split()
_MODELS = "Vision Station Micro Pocket Pad Cassette Computer Boy Jet Pico Portable Player Console Mini Duo Link".split()
_MODEL_SUFFIX = ("", "", " 64", " 2", " 16", " 3000", " II", " Plus", " Color")

# --- name space: every (prefix, noun, tail) triple renders to a distinct slug ---
_PREFIXES = (
    "Crimson Shadow Iron Silent Eternal Neon Hollow Frozen Savage Mystic Broken Golden Burning Lost "
    "Final Dark Hidden Ancient Cosmic Rogue Wild Infinite Sacred Phantom Stellar Cursed Radiant Forgotten "
    "Galactic Brave Sunken Electric Crystal Scarlet Twisted Endless Primal Arcane Steel Velvet Hyper "
    "Quantum Feral Lunar Solar Astral Midnight Thunder Royal Rusty Fallen Wicked Blazing Emerald Obsidian "
    "Pixel Turbo Super Grim Distant Northern Atomic Clockwork Paper"
).split()
_NOUNS = (
    "Knight Dragon Horizon Kingdom Blade Frontier Citadel Warden Pilgrim Engine Station Harbor Orchard "
    "Labyrinth Garden Tower Crown Circuit Voyage Outpost Colony Drifter Hunter Ronin Valkyrie Golem Wizard "
    "Sentinel Reactor Abyss Carnival Express Ranger Paladin Samurai Pirate Monarch Oracle Titan Nomad "
    "Specter Raider Fortress Lantern Compass Meridian Paradox Spire Relic Tempest Cascade Bastion Ember "
    "Vanguard Mirage Cipher Harvest Rebellion Soldier Outlaw Gambit Cosmonaut Ragnarök Pokémon"
).split()
_TAILS = tuple(f" {w}" for w in (
    "Kart World Quest Saga Tactics Party Racing Arena Legends Odyssey Chronicles Origins Rising Unleashed "
    "Reborn Heroes Wars Academy Tycoon Simulator Survivors Dungeons Rivals Island Remastered Deluxe Online "
    "Evolution 2 3 4 II III IV 64 HD DX Zero X Advance"
).split()) + tuple(f": {s}" for s in (
    "The Lost Crown", "Ashes of Dawn", "Beyond the Veil", "Echoes of Eternity", "Director's Cut",
    "Game of the Year Edition", "Rise of the Fallen", "Tides of War", "A Hero's Journey", "Into the Abyss",
    "The Second Coming", "Shattered Skies", "Night Falls", "Blood Moon", "Return to the Spire", "Last Light",
    "Steel Horizon", "Deep Roots", "Iron Will", "Déjà Vu",
)) + ("", " 2: Revelations", " Collection", " Ultimate")
# rare whole titles that fall outside the name space: (name, romanised slug)
_SPECIAL_TITLES = (
    ("ドラゴンクエスト", "dragon-quest"), ("ファイナルファンタジー", "final-fantasy"),
    ("星のカービィ", "hoshi-no-kirby"), ("大神", "okami"), ("Ōkami", "okami"), ("ゼルダの伝説", "zelda-no-densetsu"),
    ("Brütal Légende", "brutal-legende"), ("Señor Fútbol", "senor-futbol"), ("Ragnarök Online", "ragnarok-online"),
    ("Pixel Hearts 💖", "pixel-hearts"),
)
_VOCAB = (
    "the a an of in to and with from across beyond their his her its your every ancient forgotten hidden "
    "kingdom empire city village island realm world galaxy planet frontier desert forest ocean mountain "
    "dungeon fortress tower ruins hero heroine warrior knight rogue pilot detective survivor stranger "
    "outcast mercenary companion ally rival enemy army rebellion order cult guild crew legend prophecy "
    "secret artifact relic power magic technology machine monster dragon beast spirit ghost shadow light "
    "darkness war peace journey adventure quest mission battle fight explore discover build craft trade "
    "survive escape uncover defend conquer lead rescue restore unite betray forge command must will can "
    "soon never always once again while before after during against through new old vast deadly mysterious "
    "powerful brave lonely broken endless brutal beautiful strange sprawling dynamic tactical cooperative "
    "competitive online story campaign mode level boss weapon skill ability upgrade choice consequence fate "
    "destiny future past time friends family home truth lies memory dream nightmare"
).split()
_VOCAB_UNICODE = ("world’s", "hero’s", "café", "—", "–", "naïve", "Pokémon", "…", "“legendary”", "déjà")
_GAME_TYPES = ((0, 450), (8, 16), (10, 11), (4, 9), (9, 5), (3, 3), (11, 3), (2, 3))
_GAME_STATUSES = ((8, 8), (5, 3), (4, 2))


def _slugify(text: str) -> str:
    """IGDB-style slug: ASCII-folded, lower case, ' / ' spelled 'slash', other runs of symbols -> '-'."""
    folded = unicodedata.normalize("NFKD", text.replace(" / ", " slash "))
    ascii_text = folded.encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def _pool(rows: Iterable[tuple[Any, ...]]) -> tuple[int, ...]:
    """Each row's id repeated by its weight (last element): one random() then picks by weight."""
    return tuple(row[0] for row in rows for _ in range(row[-1]))


def _sentences() -> tuple[str, ...]:
    """A fixed pool of lorem-like sentences; texts are random runs of them (cheaper than words)."""
    rng = random.Random("igdb-sandbox:sentences")
    out = []
    for _ in range(4096):
        words = rng.choices(_VOCAB, k=5 + rng.getrandbits(4))
        if rng.random() < 0.03:  # gives ~20% of summaries a non-ASCII character, like the real ones
            words[rng.randrange(len(words))] = rng.choice(_VOCAB_UNICODE)
        text = " ".join(words)
        out.append(text[0].upper() + text[1:] + ".")
    return tuple(out)


_SENTENCES = _sentences()
_SENTENCE_SIZES = tuple(len(s) + 1 for s in _SENTENCES)
_KEYWORD_IDS = tuple(int(10 * 4000.0 ** ((i + 0.5) / 4096)) for i in range(4096))  # log-uniform in [10, 40000)
_SLOT_ORDERS = tuple(tuple(random.Random(f"igdb-sandbox:slots:{i}").sample(range(_SLOTS), _SLOTS)) for i in range(64))
_GENRE_POOL, _THEME_POOL, _PERSPECTIVE_POOL = _pool(_GENRES), _pool(_THEMES), _pool(_PERSPECTIVES)
_EXTRA_MODE_POOL = _pool(_GAME_MODES[1:])  # game modes besides "Single player"
_TYPE_POOL, _STATUS_POOL = _pool(_GAME_TYPES), _pool(_GAME_STATUSES)
_PREFIX_SLUGS = tuple(_slugify(w) for w in _PREFIXES)
_NOUN_SLUGS = tuple(_slugify(w) for w in _NOUNS)
_TAIL_SLUGS = tuple("-" + _slugify(t) if t else "" for t in _TAILS)
_NAME_SPACE = len(_PREFIXES) * len(_NOUNS) * len(_TAILS)


@lru_cache(maxsize=8)
def _platform_rows(seed: int) -> tuple[tuple[int, str, str, str, int, int, int], ...]:
    """(id, name, slug, abbreviation, generation, family, weight) of all 220 platforms, sorted by id."""
    rng = random.Random(f"{seed}:platforms")
    known = {row[0] for row in _PLATFORMS}
    ids = sorted(rng.sample([i for i in range(1, 521) if i not in known], _PLATFORM_COUNT - len(_PLATFORMS)))
    rows = [(pid, name, _slugify(abbr), abbr, gen, fam, w) for pid, name, abbr, gen, fam, w in _PLATFORMS]
    slugs = {row[2] for row in rows}
    for pid in ids:
        name = f"{rng.choice(_MAKERS)} {rng.choice(_MODELS)}{rng.choice(_MODEL_SUFFIX)}"
        if _slugify(name) in slugs:
            name = f"{name} {pid}"
        slugs.add(slug := _slugify(name))
        abbreviation = "".join(w[0] if w.isalpha() else w for w in name.split()) if rng.random() < 0.5 else ""
        generation = rng.randint(1, 9) if rng.random() < 0.44 else 0
        family = rng.randint(1, 5) if rng.random() < 0.15 else 0
        rows.append((pid, name, slug, abbreviation, generation, family, 1))
    return tuple(sorted(rows))


def _updated(rng: random.Random, anchor: int, skew: float = 1.0) -> int:
    """A time in [anchor - 2 years, anchor]; skew > 1 piles values up near the anchor."""
    return anchor - int(2 * _YEAR * rng.random() ** skew)


def generate_reference(entity: str, spec: GeneratorSpec) -> list[dict[str, Any]]:
    """Records of one small reference entity, sorted by id, so games can point at real ids."""
    rng = random.Random(f"{spec.seed}:{entity}")
    if entity == "platforms":
        rows = [{"id": pid, "abbreviation": abbreviation, "generation": generation, "name": name,
                 "platform_family": family, "slug": slug, "updated_at": _updated(rng, spec.anchor)}
                for pid, name, slug, abbreviation, generation, family, _ in _platform_rows(spec.seed)]
        return [{key: value for key, value in row.items() if value} for row in rows]  # 0 / "" = absent
    if entity == "popularity_types":
        return [{"id": t[0], "external_popularity_source": t[2], "name": t[1], "updated_at": _updated(rng, spec.anchor)}
                for t in _POPULARITY_TYPES]
    tables = {"genres": _GENRES, "themes": _THEMES, "game_modes": _GAME_MODES, "player_perspectives": _PERSPECTIVES}
    if entity not in tables:
        raise ValueError(f"unknown reference entity {entity!r}; expected one of {REFERENCE_ENTITIES}")
    return [{"id": i, "name": name, "slug": _slugify(name), "updated_at": _updated(rng, spec.anchor)}
            for i, name, _ in tables[entity]]


@lru_cache(maxsize=4096)
def _id_block(seed: int, block: int) -> tuple[int, ...]:
    """Ids of games block*10 .. block*10+9: 10 sorted picks from 13 consecutive integers."""
    slots = random.Random(f"{seed}:ids:{block}").sample(range(_ID_SPAN), _ID_BLOCK)
    base = block * _ID_SPAN + 1
    return tuple(base + s for s in sorted(slots))


def _game_id(seed: int, index: int) -> int:
    """Id of the game at 0-based position index; O(1), strictly increasing in index."""
    block, offset = divmod(index, _ID_BLOCK)
    return _id_block(seed, block)[offset]


@dataclass(frozen=True)
class _Context:
    """Per-spec values every game needs, computed once per iteration."""

    seed: int
    anchor: int
    name_mult: int
    name_offset: int
    platforms: tuple[int, ...]


def _context(spec: GeneratorSpec) -> _Context:
    rng = random.Random(f"{spec.seed}:names")
    mult = int(_NAME_SPACE * 0.6180339887) + rng.randrange(4096)  # golden-ratio stride spreads names evenly
    while math.gcd(mult, _NAME_SPACE) != 1:
        mult += 1
    return _Context(spec.seed, spec.anchor, mult, rng.randrange(_NAME_SPACE), _pool(_platform_rows(spec.seed)))


def _lengths(low: int, mean: float, high: int) -> tuple[int, ...]:
    """256 equally likely array lengths (quantiles of low + geometric, clipped to high): one getrandbits(8) each."""
    ratio = math.log((mean - low) / (1.0 + mean - low))
    return tuple(min(high, low + int(math.log(1.0 - (i + 0.5) / 256) / ratio)) for i in range(256))


# (low, mean before clipping, high) per array; the means land on the real ones, except the two shortened arrays
_LENGTHS = {name: _lengths(*shape) for name, shape in {
    "extra_modes": (0, 0.9, 4), "external_games": (2, 8.3, _SLOTS), "genres": (1, 2.5, 6),
    "involved_companies": (1, 3.35, 18), "keywords": (1, 20.5, 150), "multiplayer_modes": (1, 1.6, 6),
    "platforms": (1, 4.4, 15), "player_perspectives": (1, 1.25, 5), "release_dates": (1, 8.55, 25),
    "screenshots": (3, 8.65, 20), "themes": (1, 3.65, 7), "websites": (2, 10.9, 20),
}.items()}


def _pick(rng: random.Random, pool: tuple[int, ...], k: int) -> list[int]:
    """k distinct ids drawn by weight from a pool, sorted (k must not exceed the distinct ids)."""
    rand, size = rng.random, len(pool)
    if k < 2:
        return [pool[int(rand() * size)]] if k else []
    chosen = {pool[int(rand() * size)] for _ in range(k)}
    while len(chosen) < k:
        chosen.add(pool[int(rand() * size)])
    return sorted(chosen)


def _children(game_id: int, order: int, k: int) -> list[int]:
    """k distinct child-entity ids owned by this game (unique across games, unordered like IGDB)."""
    return list(map((game_id * _SLOTS).__add__, _SLOT_ORDERS[order][:k]))


def _text(rng: random.Random, median: float, sigma: float, cap: int, paragraphs: bool) -> str:
    """Lorem-like prose of about lognormal(median, sigma) characters, optionally in paragraphs."""
    target = min(cap, rng.lognormvariate(math.log(median), sigma))
    bits, size, picks = rng.getrandbits, 0, []
    while size < target:
        picks.append(i := bits(12))
        size += _SENTENCE_SIZES[i]
    if not paragraphs:
        return " ".join([_SENTENCES[i] for i in picks])
    rand, parts = rng.random, [_SENTENCES[picks[0]]]
    for i in picks[1:]:
        parts.append("\n\n" if rand() < 0.15 else " ")
        parts.append(_SENTENCES[i])
    return "".join(parts)


def _name(ctx: _Context, rng: random.Random, index: int, game_id: int) -> tuple[str, str]:
    """(name, slug); an affine bijection over the name space keeps slugs unique without state."""
    if rng.random() < 0.006:
        title, slug = rng.choice(_SPECIAL_TITLES)
        return title, f"{slug}--{game_id}"
    k = (ctx.name_mult * index + ctx.name_offset) % _NAME_SPACE
    k, p = divmod(k, len(_PREFIXES))
    t, n = divmod(k, len(_NOUNS))
    slug = f"{_PREFIX_SLUGS[p]}-{_NOUN_SLUGS[n]}{_TAIL_SLUGS[t]}"
    return f"{_PREFIXES[p]} {_NOUNS[n]}{_TAILS[t]}", slug if index < _NAME_SPACE else f"{slug}--{game_id}"


def _make_game(ctx: _Context, index: int, rng: random.Random) -> dict[str, Any]:
    """Game number index (0-based), built only from (seed, index); rng is reseeded (cheaper than a new one)."""
    rng.seed(f"{ctx.seed}:game:{index}")
    rand, bits, size = rng.random, rng.getrandbits, _LENGTHS
    gid = _game_id(ctx.seed, index)
    name, slug = _name(ctx, rng, index, gid)
    game_type = _TYPE_POOL[int(rand() * len(_TYPE_POOL))]
    single = rand() < 0.974  # "Single player" is on 97% of games; other modes come on top
    extra_modes = size["extra_modes"][bits(8)]
    modes = ([1] if single else []) + _pick(rng, _EXTRA_MODE_POOL, extra_modes if single else max(1, extra_modes))
    rating = min(100.0, max(5.0, rng.gauss(78.0, 9.0)))
    rating_count = 1 + int(rng.lognormvariate(6.45, 0.7))
    g: dict[str, Any] = {"id": gid}
    agg_count = 0
    if rand() < 0.938:
        agg_count = 1 + int(rng.expovariate(1 / 9.0))
        agg = round(min(100.0, max(5.0, rng.gauss(rating + 1.5, 7.0))) * agg_count) / agg_count
        g["aggregated_rating"], g["aggregated_rating_count"] = agg, agg_count
    g["cover"] = gid * _SLOTS + bits(5)
    g["external_games"] = _children(gid, bits(6), size["external_games"][bits(8)])
    released = _EPOCH_1980 + int((ctx.anchor + _YEAR - _EPOCH_1980) * rand() ** 0.6)  # skewed to recent years
    g["first_release_date"] = released - released % _DAY  # IGDB dates are midnight UTC
    g["game_modes"] = modes
    if rand() < 0.022:
        g["game_status"] = _STATUS_POOL[int(rand() * len(_STATUS_POOL))]
    g["game_type"] = game_type
    g["genres"] = _pick(rng, _GENRE_POOL, size["genres"][bits(8)])
    g["involved_companies"] = _children(gid, bits(6), size["involved_companies"][bits(8)])
    if rand() < 0.996:
        g["keywords"] = sorted(set(rng.choices(_KEYWORD_IDS, k=size["keywords"][bits(8)])))
    if rand() < (0.8 if modes[-1] > 1 else 0.11):  # multiplayer modes mostly come with a multiplayer game mode
        g["multiplayer_modes"] = _children(gid, bits(6), size["multiplayer_modes"][bits(8)])
    g["name"] = name
    if game_type and index and rand() < 0.94:  # DLCs, remakes, ports... point at an earlier game
        g["parent_game"] = _game_id(ctx.seed, int(rand() * index))
    g["platforms"] = _pick(rng, ctx.platforms, size["platforms"][bits(8)])
    g["player_perspectives"] = _pick(rng, _PERSPECTIVE_POOL, size["player_perspectives"][bits(8)])
    g["rating"], g["rating_count"] = rating, rating_count
    g["release_dates"] = _children(gid, bits(6), size["release_dates"][bits(8)])
    g["screenshots"] = _children(gid, bits(6), size["screenshots"][bits(8)])
    g["slug"] = slug
    if rand() < 0.69:
        g["storyline"] = _text(rng, 560.0, 1.0, 8000, True)
    g["summary"] = _text(rng, 420.0, 0.55, 3200, False)
    if rand() < 0.998:
        g["themes"] = _pick(rng, _THEME_POOL, size["themes"][bits(8)])
    g["total_rating"] = (rating + g["aggregated_rating"]) / 2 if agg_count else rating
    g["total_rating_count"] = rating_count + agg_count
    g["updated_at"] = _updated(rng, ctx.anchor, 3.0)
    if index and rand() < 0.002:
        g["version_parent"] = _game_id(ctx.seed, int(rand() * index))
    g["websites"] = _children(gid, bits(6), size["websites"][bits(8)])
    return g


def iter_games(spec: GeneratorSpec) -> Iterator[dict[str, Any]]:
    """Games in ascending id order, lazily, so a server can stream any number of them."""
    ctx, rng = _context(spec), random.Random()
    for index in range(spec.games):
        yield _make_game(ctx, index, rng)


def iter_popularity_primitives(
    spec: GeneratorSpec, games: Iterable[Mapping[str, Any]] | None = None
) -> Iterator[dict[str, Any]]:
    """Popularity rows for games (default: all of spec's games); ids run from 1 in iteration order.

    Which types a game has and their values depend only on (seed, game id); values are
    log-normal per type around the real magnitudes, correlated through one per-game factor.
    """
    next_id, rng = 1, random.Random()
    for game in iter_games(spec) if games is None else games:
        gid = game["id"]
        rng.seed(f"{spec.seed}:pop:{gid}")
        rand, gauss = rng.random, rng.gauss
        fame = gauss(0.0, 1.0)
        steam = rand() < 0.62
        upcoming = game.get("first_release_date", 0) > spec.anchor
        types = [1] if rand() < 0.998 else []
        types += [2, 3, 4] + ([5, 6, 7, 8] if steam else [])
        types += [9] if rand() < (0.86 if steam else 0.03) else []
        types += [10] if steam and upcoming and rand() < 0.5 else []
        types += [34] if rand() < 0.95 else []
        for type_id in types:
            _, _, source, mu, sd, quantum, zeros = _POP_BY_TYPE[type_id]
            value = 0.0
            if not (zeros and rand() < zeros):
                value = 10.0 ** (mu + sd * (0.8 * fame + 0.6 * gauss(0.0, 1.0)))
                value = round(max(1, round(value / quantum)) * quantum if quantum else value, 15)
            yield {"id": next_id, "game_id": gid, "popularity_type": type_id, "external_popularity_source": source,
                   "value": value, "calculated_at": spec.anchor, "updated_at": spec.anchor + 1 + rng.randrange(9)}
            next_id += 1


def generate_dataset(spec: GeneratorSpec) -> dict[str, list[dict[str, Any]]]:
    """Every entity name -> its records sorted by id (games, popularity_primitives and references)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of new acyclic containers: the cyclic GC would only rescan them
    try:
        games = list(iter_games(spec))
        data = {entity: generate_reference(entity, spec) for entity in REFERENCE_ENTITIES}
        data["games"] = games
        data["popularity_primitives"] = list(iter_popularity_primitives(spec, games))
        return data
    finally:
        if gc_was_enabled:
            gc.enable()
